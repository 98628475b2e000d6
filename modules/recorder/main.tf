# Recorder: execution records from Step Functions itself.
#
#   state machines --(EventBridge rule: Execution Status Change)--> SQS buffer --> recorder function --> status store
#                                                                     |-> (maxReceiveCount) recorder DLQ
#
# Every RUNNING / SUCCEEDED / FAILED / TIMED_OUT / ABORTED of the given state
# machines is recorded, also for executions aborted or timed out before their
# first task (which the in-workflow status steps never see). The status store
# is modules/executions' table, an input here; the item layout is in
# docs/INTERFACES.md (cnm_ingest.executions).

locals {
  queue_name = "${var.prefix}-execution-events"
  # states:DescribeExecution on the executions of the given state machines (input left out of large events)
  execution_arns = [for arn in var.state_machine_arns : "${replace(arn, ":stateMachine:", ":execution:")}:*"]
}

################################################################################
# SQS buffer and its dead-letter queue
################################################################################

resource "aws_sqs_queue" "dlq" {
  name                      = "${local.queue_name}-dlq"
  message_retention_seconds = var.dlq_message_retention_seconds

  sqs_managed_sse_enabled           = var.function.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.function.kms_key_arn
  kms_data_key_reuse_period_seconds = var.function.kms_key_arn == null ? null : 300

  tags = var.function.tags
}

resource "aws_sqs_queue" "buffer" {
  name                       = local.queue_name
  message_retention_seconds  = var.queue_message_retention_seconds
  visibility_timeout_seconds = var.function.timeout * 6

  sqs_managed_sse_enabled           = var.function.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.function.kms_key_arn
  kms_data_key_reuse_period_seconds = var.function.kms_key_arn == null ? null : 300

  tags = var.function.tags
}

# The redrive policy is a resource of its own, not the buffer's `redrive_policy`: then the buffer does not depend on
# the DLQ, and a destroy deletes the two queues side by side. The provider waits about 2 minutes after each queue it
# deletes (15 consecutive reads that find it gone), so one after the other took about 4.
resource "aws_sqs_queue_redrive_policy" "buffer" {
  queue_url = aws_sqs_queue.buffer.id

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.buffer.arn]
  })
}

# TLS only; EventBridge may send from this rule: to the buffer (the target) and to the DLQ (the target's
# dead-letter queue for events it cannot deliver).
data "aws_iam_policy_document" "queue" {
  for_each = { buffer = aws_sqs_queue.buffer.arn, dlq = aws_sqs_queue.dlq.arn }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "EventBridgeRuleSends"
    actions   = ["sqs:SendMessage"]
    resources = [each.value]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.status_change.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  for_each = { buffer = aws_sqs_queue.buffer.id, dlq = aws_sqs_queue.dlq.id }

  queue_url = each.value
  policy    = data.aws_iam_policy_document.queue[each.key].json
}

################################################################################
# EventBridge rule: execution status changes of the module's state machines
################################################################################

resource "aws_cloudwatch_event_rule" "status_change" {
  name        = "${var.prefix}-execution-status"
  description = "Step Functions execution status changes of the cnm-ingest workflows -> recorder"

  event_pattern = jsonencode({
    source        = ["aws.states"]
    "detail-type" = ["Step Functions Execution Status Change"]
    detail = {
      stateMachineArn = var.state_machine_arns
    }
  })

  tags = var.function.tags
}

resource "aws_cloudwatch_event_target" "buffer" {
  rule      = aws_cloudwatch_event_rule.status_change.name
  target_id = "recorder-buffer"
  arn       = aws_sqs_queue.buffer.arn

  # events EventBridge cannot deliver (after its retries) still end up in the DLQ
  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }
}

################################################################################
# Recorder function
################################################################################

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "ConsumeBuffer"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.buffer.arn]
  }

  statement {
    # Execution and granule items only (not SyncGranule's commit order, pk "STAGING#...").
    sid       = "WriteRecords"
    actions   = ["dynamodb:UpdateItem", "dynamodb:GetItem"]
    resources = [var.table_arn]

    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["EXECUTION#*", "GRANULE#*"]
    }
  }

  statement {
    # A CNM offloaded to the payload bucket (meta.cnm_ref: a large granule) is read back for its granule ids
    # and identifier: the workflow message's parts only (workflow/<sha256>), nothing else in the bucket.
    sid       = "ReadWorkflowPayloads"
    actions   = ["s3:GetObject"]
    resources = [var.workflow_payload_objects_arn]
  }

  statement {
    sid       = "ReadLargeInputs"
    actions   = ["states:DescribeExecution"]
    resources = local.execution_arns
  }
}

module "function" {
  source = "../lambda_function"

  # The store and the payload bucket are this module's inputs, so their names are added here.
  function = merge(var.function, {
    environment_variables = merge(var.function.environment_variables, {
      EXECUTIONS_TABLE = var.table_name
      PAYLOAD_BUCKET   = var.payload_bucket_name
    })
  })
  policy_json = data.aws_iam_policy_document.this.json
}

resource "aws_lambda_event_source_mapping" "buffer" {
  event_source_arn                   = aws_sqs_queue.buffer.arn
  function_name                      = module.function.function_arn
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  tags = var.function.tags
}

################################################################################
# Alarm: events the recorder could not record
################################################################################

resource "aws_cloudwatch_metric_alarm" "dlq" {
  count = var.create_dlq_alarm ? 1 : 0

  alarm_name          = "${var.prefix}-recorder-dlq-not-empty"
  alarm_description   = "Execution status events are parked in ${aws_sqs_queue.dlq.name}: the status store misses them until they are moved back to ${aws_sqs_queue.buffer.name} (SQS redrive)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.function.tags
}
