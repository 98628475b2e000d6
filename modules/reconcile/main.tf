# Reconcile: every CNM of a trailing window accounted for, on a schedule.
#
#   EventBridge schedule --> reconcile function --reads--> notification stream (AT_TIMESTAMP), response stream,
#                                    |                     executions table (by_status index), idempotency markers
#                                    '--> CloudWatch metrics Unanswered, Stuck, Lost (dimension collection) --> alarms
#
# The function only reads and publishes metrics: `cnm-ingest reconcile --fix --apply` acts.

locals {
  namespace = var.function.environment_variables.POWERTOOLS_METRICS_NAMESPACE
  metrics = {
    Unanswered = "records parked or ended without an answer to the provider"
    Stuck      = "records whose execution runs longer than the workflow's timeout"
    Lost       = "records seen on the notification stream, never started, parked or answered"
  }
  # every collection: a Metrics Insights query over the collection dimension; and one alarm per listed collection
  collection_alarms = merge(
    { for m, d in local.metrics : "reconcile-${lower(m)}" => { metric = m, description = d, collection = null } },
    {
      for pair in setproduct(keys(local.metrics), var.alarm_collections) :
      "reconcile-${lower(pair[0])}-${replace(lower(pair[1]), "/[^a-z0-9_.-]+/", "-")}" => {
        metric = pair[0], description = local.metrics[pair[0]], collection = pair[1]
      }
    },
  )
}

################################################################################
# Function
################################################################################

data "aws_iam_policy_document" "this" {
  statement {
    sid = "ReadStreams"
    actions = [
      "kinesis:DescribeStreamSummary",
      "kinesis:GetShardIterator",
      "kinesis:GetRecords",
      "kinesis:ListShards",
    ]
    resources = distinct([var.notification_stream_arn, var.response_stream_arn])
  }

  statement {
    sid       = "QueryExecutions"
    actions   = ["dynamodb:Query"]
    resources = ["${var.executions_table_arn}/index/by_status"]
  }

  # Powertools reads an idempotency record with GetItem: the park marker, CnmResponse's parking marker
  statement {
    sid       = "ReadMarkers"
    actions   = ["dynamodb:GetItem"]
    resources = [var.idempotency_table_arn]
  }
}

module "function" {
  source = "../lambda_function"

  function = merge(var.function, {
    environment_variables = merge(var.function.environment_variables, var.shared_environment, {
      NOTIFICATION_STREAM_ARN       = var.notification_stream_arn
      RESPONSE_STREAM_ARN           = var.response_stream_arn
      EXECUTIONS_TABLE              = var.executions_table_name
      IDEMPOTENCY_TABLE             = var.idempotency_table_name
      RECONCILE_WINDOW_SECONDS      = tostring(var.window_seconds)
      RECONCILE_SETTLE_SECONDS      = tostring(var.settle_seconds)
      RECONCILE_STUCK_AFTER_SECONDS = tostring(var.stuck_after_seconds)
    })
  })
  policy_json = data.aws_iam_policy_document.this.json
}

################################################################################
# Schedule
################################################################################

resource "aws_cloudwatch_event_rule" "schedule" {
  name                = "${var.prefix}-reconcile"
  description         = "cnm-ingest: reconcile the trailing window (metrics Unanswered, Stuck, Lost)"
  schedule_expression = var.schedule_expression

  tags = var.function.tags
}

resource "aws_cloudwatch_event_target" "function" {
  rule      = aws_cloudwatch_event_rule.schedule.name
  target_id = "reconcile"
  arn       = module.function.function_arn

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 2
  }
}

resource "aws_lambda_permission" "schedule" {
  statement_id  = "AllowReconcileSchedule"
  action        = "lambda:InvokeFunction"
  function_name = module.function.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule.arn
}

################################################################################
# Alarms
################################################################################

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = var.create_alarms ? local.collection_alarms : {}

  alarm_name          = "${var.prefix}-${each.key}"
  alarm_description   = "${each.value.metric}: ${each.value.description} (${each.value.collection == null ? "any collection" : "collection ${each.value.collection}"}; cnm-ingest reconcile lists them)"
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  # one collection: the metric itself
  namespace   = each.value.collection == null ? null : local.namespace
  metric_name = each.value.collection == null ? null : each.value.metric
  dimensions  = each.value.collection == null ? null : { collection = each.value.collection }
  statistic   = each.value.collection == null ? null : "Maximum"
  period      = each.value.collection == null ? null : var.alarm_period_seconds

  # any collection: the largest value over every collection (Metrics Insights)
  dynamic "metric_query" {
    for_each = each.value.collection == null ? [1] : []

    content {
      id          = "worst"
      expression  = "SELECT MAX(${each.value.metric}) FROM SCHEMA(\"${local.namespace}\", collection)"
      period      = var.alarm_period_seconds
      return_data = true
    }
  }

  tags = var.function.tags
}
