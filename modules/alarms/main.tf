# CloudWatch alarms: the notification stream falling behind, anything in the
# dead-letter queue, failed / timed-out / aborted executions of each state
# machine, and errors of each function; optional alarm topic.

locals {
  topic_arn     = var.create_topic ? aws_sns_topic.this[0].arn : var.topic_arn
  alarm_actions = local.topic_arn == null ? [] : [local.topic_arn]
}

resource "aws_sns_topic" "this" {
  count = var.create_topic ? 1 : 0

  name              = "${var.prefix}-alarms"
  kms_master_key_id = var.kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "topic" {
  count = var.create_topic ? 1 : 0

  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this[0].arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [split(":", aws_sns_topic.this[0].arn)[4]] # the topic's own account (no STS call)
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  count = var.create_topic ? 1 : 0

  arn    = aws_sns_topic.this[0].arn
  policy = data.aws_iam_policy_document.topic[0].json
}

resource "aws_sns_topic_subscription" "email" {
  for_each = var.create_topic ? toset(var.topic_subscription_emails) : toset([])

  topic_arn = aws_sns_topic.this[0].arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  # Step Functions execution metrics -> alarm name suffix.
  execution_metrics = {
    ExecutionsFailed   = "executions-failed"
    ExecutionsTimedOut = "executions-timed-out"
    ExecutionsAborted  = "executions-aborted"
  }

  # One entry per alarm: what it watches and when it fires. Every alarm
  # notifies the alarm topic (if any) on ALARM and OK, and treats missing data
  # as not breaching (no records, no invocations: nothing is wrong).
  alarms = merge(
    {
      notification-stream-iterator-age = {
        description = "Records wait in the notification stream longer than ${var.iterator_age_threshold_ms} ms: the consumer is falling behind or stuck."
        namespace   = "AWS/Kinesis"
        metric_name = "GetRecords.IteratorAgeMilliseconds"
        dimensions  = { StreamName = var.notification_stream_name }
        statistic   = "Maximum"
        periods     = var.evaluation_periods
        threshold   = var.iterator_age_threshold_ms
      }
      dlq-not-empty = {
        description = "Records are parked in the dead-letter queue ${var.dlq_name}: inspect and redrive them."
        namespace   = "AWS/SQS"
        metric_name = "ApproximateNumberOfMessagesVisible"
        dimensions  = { QueueName = var.dlq_name }
        statistic   = "Maximum"
        periods     = 1
        threshold   = 0
      }
    },
    {
      for key, alarm in {
        message-consumer-iterator-age = {
          description = "The message consumer reads records older than ${var.iterator_age_threshold_ms} ms (covers enhanced fan-out)."
          namespace   = "AWS/Lambda"
          metric_name = "IteratorAge"
          dimensions  = { FunctionName = var.consumer_function_name }
          statistic   = "Maximum"
          periods     = var.evaluation_periods
          threshold   = var.iterator_age_threshold_ms
        }
      } : key => alarm if var.consumer_function_name != null
    },
    {
      # Every state machine the pipeline starts: an execution that failed, timed out or was aborted
      # (a FAILED execution has answered or parked its record; these say something went wrong).
      for pair in setproduct(keys(var.state_machine_arns), keys(local.execution_metrics)) :
      "${replace(pair[0], "_", "-")}-${local.execution_metrics[pair[1]]}" => {
        description = "State machine ${pair[0]}: ${pair[1]} > 0."
        namespace   = "AWS/States"
        metric_name = pair[1]
        dimensions  = { StateMachineArn = var.state_machine_arns[pair[0]] }
        statistic   = "Sum"
        periods     = 1
        threshold   = 0
      }
    },
    {
      for role, name in var.function_names : "${replace(role, "_", "-")}-errors" => {
        description = "The function ${name} reported errors."
        namespace   = "AWS/Lambda"
        metric_name = "Errors"
        dimensions  = { FunctionName = name }
        statistic   = "Sum"
        periods     = var.evaluation_periods
        threshold   = var.function_errors_threshold
      }
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${var.prefix}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = var.period_seconds
  evaluation_periods  = each.value.periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}
