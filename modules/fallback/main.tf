# Fallback path: the SNS fallback topic the message consumer publishes records
# it cannot route or start; the fallback consumer function it invokes
# asynchronously (retried); and the dead-letter queue <prefix>-kinesisFailure
# where records still failing end, as the Lambda on-failure destination.
# SNS deliveries that fail for good are redriven to the same queue.

locals {
  function_name = "${var.prefix}-fallback-consumer"
  dlq_name      = coalesce(var.dlq_name, "${var.prefix}-kinesisFailure")
  topic_key     = var.kms_key_arn != null ? var.kms_key_arn : var.topic_kms_master_key_id
}

################################################################################
# Dead-letter queue
################################################################################

resource "aws_sqs_queue" "dlq" {
  name                       = local.dlq_name
  message_retention_seconds  = var.dlq_message_retention_seconds
  visibility_timeout_seconds = var.dlq_visibility_timeout_seconds

  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 300

  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = length(var.dlq_redrive_source_queue_arns) == 0 ? jsonencode({
    redrivePermission = "allowAll"
    }) : jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = var.dlq_redrive_source_queue_arns
  })
}

data "aws_iam_policy_document" "dlq" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.dlq.arn]

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
    sid       = "PipelineFunctionsSend"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]

    principals {
      type        = "AWS"
      identifiers = concat([module.function.role_arn], var.dlq_sender_role_arns)
    }
  }

  statement {
    sid       = "SnsRedriveUndeliverable"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = concat([aws_sns_topic.fallback.arn], var.dlq_sns_source_topic_arns)
    }
  }
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.dlq.json
}

################################################################################
# Fallback topic
################################################################################

resource "aws_sns_topic" "fallback" {
  name              = "${var.prefix}-fallback"
  kms_master_key_id = local.topic_key

  tags = var.tags
}

################################################################################
# Fallback consumer
################################################################################

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "ReadConfiguration"
    actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"]
    resources = var.config_table_arns
  }

  statement {
    sid       = "StartWorkflows"
    actions   = ["states:StartExecution"]
    resources = var.state_machine_arns
  }


  statement {
    sid       = "SendToDeadLetterQueue"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  dynamic "statement" {
    for_each = var.idempotency_table_arn == null ? [] : [1]

    content {
      sid       = "IdempotencyRecords"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      resources = [var.idempotency_table_arn]
    }
  }

  dynamic "statement" {
    for_each = var.response_stream_arn == null ? [] : [1]

    content {
      sid       = "WriteResponses"
      actions   = ["kinesis:PutRecord"]
      resources = [var.response_stream_arn]
    }
  }

  statement {
    sid       = "LargePayloads"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${var.payload_bucket_arn}/${var.payload_key_prefix}*", "${var.payload_bucket_arn}/${var.workflow_payload_key_prefix}*"]
  }
}

module "function" {
  source = "../lambda_function"

  function_name                  = local.function_name
  description                    = "CNM ingest: retries records the message consumer could not process, parks the rest in the DLQ"
  filename                       = var.package.filename
  source_code_hash               = var.package.source_code_hash
  handler                        = var.package.handler
  runtime                        = var.runtime
  layers                         = var.layers
  timeout                        = var.timeout
  memory_size                    = var.memory_size
  reserved_concurrent_executions = var.reserved_concurrent_executions
  environment_variables = merge(
    var.environment_variables,
    { DLQ_URL = aws_sqs_queue.dlq.id, PAYLOAD_KEY_PREFIX = var.payload_key_prefix },
    var.idempotency_table_name == null ? {} : { IDEMPOTENCY_TABLE = var.idempotency_table_name },
    var.response_stream_arn == null ? {} : { RESPONSE_STREAM_ARN = var.response_stream_arn },
  )
  policy_json             = data.aws_iam_policy_document.this.json
  tracing_enabled         = var.tracing_enabled
  log_retention_days      = var.log_retention_days
  kms_key_arn             = var.kms_key_arn
  additional_kms_key_arns = var.additional_kms_key_arns

  create_async_event_config          = true
  async_maximum_retry_attempts       = var.maximum_retry_attempts
  async_maximum_event_age_in_seconds = var.maximum_event_age_in_seconds
  async_on_failure_destination_arn   = aws_sqs_queue.dlq.arn
  async_on_failure_destination_type  = "sqs"

  tags = var.tags
}

resource "aws_lambda_permission" "sns" {
  statement_id  = "AllowFallbackTopic"
  action        = "lambda:InvokeFunction"
  function_name = module.function.function_name
  principal     = "sns.amazonaws.com"
  source_arn    = aws_sns_topic.fallback.arn
}

resource "aws_sns_topic_subscription" "fallback" {
  topic_arn = aws_sns_topic.fallback.arn
  protocol  = "lambda"
  endpoint  = module.function.function_arn

  # A message SNS cannot deliver to the function at all still ends in the DLQ.
  redrive_policy = jsonencode({ deadLetterTargetArn = aws_sqs_queue.dlq.arn })

  depends_on = [aws_lambda_permission.sns, aws_sqs_queue_policy.dlq]
}
