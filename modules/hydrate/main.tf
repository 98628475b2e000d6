# Hydrate: subscribed to the failed-batch topic. The ESM on-failure record has
# only the batch metadata (shard, sequence range); this function re-reads those
# records from the notification stream and parks each, payload included, in the
# DLQ. Its own failures (after Lambda's retries) also go to the DLQ, as AWS's
# invocation record carrying the batch metadata.

locals {
  execution_arn_globs = [for arn in var.state_machine_arns : "${replace(arn, ":stateMachine:", ":execution:")}:*"]
}

################################################################################
# Function
################################################################################

data "aws_iam_policy_document" "this" {
  statement {
    sid = "ReReadNotificationStream"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetShardIterator",
      "kinesis:GetRecords",
      "kinesis:ListShards",
    ]
    resources = [var.stream_arn]
  }

  statement {
    sid       = "SendToDeadLetterQueue"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
    resources = [var.dlq_arn]
  }

  statement {
    sid       = "IdempotencyRecords"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
    resources = [var.idempotency_table_arn]
  }

  dynamic "statement" {
    for_each = length(var.config_table_arns) == 0 ? [] : [1]

    content {
      sid       = "ReadConfiguration"
      actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"]
      resources = var.config_table_arns
    }
  }

  dynamic "statement" {
    for_each = length(local.execution_arn_globs) == 0 ? [] : [1]

    content {
      sid       = "CheckStartedExecutions"
      actions   = ["states:DescribeExecution"]
      resources = local.execution_arn_globs
    }
  }

  statement {
    sid       = "StoreLargePayloads"
    actions   = ["s3:PutObject"]
    resources = ["${var.payload_bucket_arn}/${var.payload_key_prefix}*"]
  }
}

module "function" {
  source = "../lambda_function"

  function_name                  = "${var.prefix}-hydrate"
  description                    = "CNM ingest: re-reads failed notification batches into the DLQ"
  filename                       = var.package.filename
  source_code_hash               = var.package.source_code_hash
  handler                        = var.package.handler
  runtime                        = var.runtime
  layers                         = var.layers
  timeout                        = var.timeout
  memory_size                    = var.memory_size
  reserved_concurrent_executions = var.reserved_concurrent_executions
  policy_json                    = data.aws_iam_policy_document.this.json
  tracing_enabled                = var.tracing_enabled
  log_retention_days             = var.log_retention_days
  kms_key_arn                    = var.kms_key_arn
  additional_kms_key_arns        = var.additional_kms_key_arns

  environment_variables = merge(
    var.environment_variables,
    {
      DLQ_URL               = var.dlq_url
      MAX_GET_RECORDS_CALLS = tostring(var.max_get_records_calls)
      PAYLOAD_KEY_PREFIX    = var.payload_key_prefix
    },
    var.get_records_limit == null ? {} : { GET_RECORDS_LIMIT = tostring(var.get_records_limit) },
    { IDEMPOTENCY_TABLE = var.idempotency_table_name },
  )

  create_async_event_config          = true
  async_maximum_retry_attempts       = var.maximum_retry_attempts
  async_maximum_event_age_in_seconds = var.maximum_event_age_in_seconds
  async_on_failure_destination_arn   = var.dlq_arn
  async_on_failure_destination_type  = "sqs"

  tags = var.tags
}

resource "aws_lambda_permission" "sns" {
  statement_id  = "AllowFailedBatchTopic"
  action        = "lambda:InvokeFunction"
  function_name = module.function.function_name
  principal     = "sns.amazonaws.com"
  source_arn    = var.failed_batch_topic_arn
}

resource "aws_sns_topic_subscription" "this" {
  topic_arn = var.failed_batch_topic_arn
  protocol  = "lambda"
  endpoint  = module.function.function_arn

  # Undeliverable failed-batch notices still reach the DLQ (batch metadata only).
  redrive_policy = jsonencode({ deadLetterTargetArn = var.dlq_arn })

  depends_on = [aws_lambda_permission.sns]
}
