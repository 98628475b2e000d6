# Message consumer: the Lambda function reading the notification stream through
# an event source mapping with partial batch responses, bisection, finite
# retries and a finite record age; a batch it gives up on goes to the
# failed-batch SNS topic (default; the hydrate module re-reads it into the DLQ)
# or to an S3 bucket (AWS writes the records themselves).

data "aws_caller_identity" "current" {}

locals {
  function_name  = coalesce(var.function_name, "${var.prefix}-message-consumer")
  use_sns        = var.on_failure_destination == "sns"
  create_s3      = var.on_failure_destination == "s3" && var.on_failure_s3_bucket_arn == null
  on_failure_arn = local.use_sns ? aws_sns_topic.failed_batch[0].arn : (local.create_s3 ? module.failed_batch_bucket[0].bucket_arn : var.on_failure_s3_bucket_arn)
  event_source   = var.enhanced_fan_out ? aws_kinesis_stream_consumer.this[0].arn : var.stream_arn
}

################################################################################
# On-failure destinations
################################################################################

resource "aws_sns_topic" "failed_batch" {
  count = local.use_sns ? 1 : 0

  name              = "${var.prefix}-failed-batch"
  kms_master_key_id = var.kms_key_arn != null ? var.kms_key_arn : var.topic_kms_master_key_id

  tags = var.tags
}

module "failed_batch_bucket" {
  source = "../s3_bucket"
  count  = local.create_s3 ? 1 : 0

  bucket          = "${var.prefix}-failed-batches-${data.aws_caller_identity.current.account_id}"
  kms_key_arn     = var.kms_key_arn
  expiration_days = var.on_failure_s3_expiration_days
  force_destroy   = var.force_destroy_buckets

  tags = var.tags
}

################################################################################
# Idempotency (Powertools): park / answer / fallback once per stream record.
# Shared with the fallback consumer and hydrate (IDEMPOTENCY_TABLE).
################################################################################

resource "aws_dynamodb_table" "idempotency" {
  name                        = "${var.prefix}-idempotency"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "id"
  deletion_protection_enabled = var.idempotency_deletion_protection_enabled

  attribute {
    name = "id"
    type = "S"
  }

  ttl {
    attribute_name = "expiration"
    enabled        = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  point_in_time_recovery {
    enabled = true
  }

  tags = var.tags
}

################################################################################
# Enhanced fan-out
################################################################################

resource "aws_kinesis_stream_consumer" "this" {
  count = var.enhanced_fan_out ? 1 : 0

  name       = local.function_name
  stream_arn = var.stream_arn
}

################################################################################
# Function
################################################################################

data "aws_iam_policy_document" "this" {
  statement {
    sid = "ReadNotificationStream"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
    ]
    resources = [var.stream_arn]
  }

  dynamic "statement" {
    for_each = var.enhanced_fan_out ? [1] : []

    content {
      sid       = "ReadThroughEnhancedFanOut"
      actions   = ["kinesis:SubscribeToShard", "kinesis:DescribeStreamConsumer"]
      resources = [aws_kinesis_stream_consumer.this[0].arn]
    }
  }

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
    sid       = "ParkInDeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [var.dlq_arn]
  }

  statement {
    sid       = "IdempotencyRecords"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
    resources = [aws_dynamodb_table.idempotency.arn]
  }

  statement {
    sid       = "PublishFallback"
    actions   = ["sns:Publish"]
    resources = [var.fallback_topic_arn]
  }

  statement {
    sid       = "WriteResponses"
    actions   = ["kinesis:PutRecord", "kinesis:PutRecords"]
    resources = [var.response_stream_arn]
  }

  statement {
    sid       = "StoreLargePayloads"
    actions   = ["s3:PutObject"]
    resources = ["${var.payload_bucket_arn}/${var.payload_key_prefix}*", "${var.payload_bucket_arn}/${var.workflow_payload_key_prefix}*"]
  }

  dynamic "statement" {
    for_each = local.use_sns ? [1] : []

    content {
      sid       = "OnFailureToTopic"
      actions   = ["sns:Publish"]
      resources = [aws_sns_topic.failed_batch[0].arn]
    }
  }

  dynamic "statement" {
    for_each = local.use_sns ? [] : [1]

    content {
      sid       = "OnFailureToBucket"
      actions   = ["s3:PutObject", "s3:ListBucket"]
      resources = [local.on_failure_arn, "${local.on_failure_arn}/*"]
    }
  }
}

module "function" {
  source = "../lambda_function"

  function_name                  = local.function_name
  description                    = "CNM ingest: consumes the notification stream and starts workflows"
  filename                       = var.package.filename
  source_code_hash               = var.package.source_code_hash
  handler                        = var.package.handler
  runtime                        = var.runtime
  layers                         = var.layers
  timeout                        = var.timeout
  memory_size                    = var.memory_size
  reserved_concurrent_executions = var.reserved_concurrent_executions
  policy_json                    = data.aws_iam_policy_document.this.json

  environment_variables = merge(var.environment_variables, {
    DLQ_URL                 = var.dlq_url
    PAYLOAD_KEY_PREFIX      = var.payload_key_prefix
    IDEMPOTENCY_TABLE       = aws_dynamodb_table.idempotency.name
    IDEMPOTENCY_TTL_SECONDS = tostring(var.idempotency_ttl_seconds)
    START_CONCURRENCY       = tostring(var.start_concurrency)
    START_RATE_LIMIT        = tostring(var.start_rate_limit)
    START_RATE_BURST        = tostring(var.start_rate_burst)
    START_MAX_ATTEMPTS      = tostring(var.start_max_attempts)
  })
  tracing_enabled         = var.tracing_enabled
  log_retention_days      = var.log_retention_days
  kms_key_arn             = var.kms_key_arn
  additional_kms_key_arns = var.additional_kms_key_arns

  tags = var.tags
}

################################################################################
# Event source mapping
################################################################################

resource "aws_lambda_event_source_mapping" "this" {
  event_source_arn                   = local.event_source
  function_name                      = module.function.function_arn
  enabled                            = var.esm_enabled
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  starting_position                  = var.starting_position
  starting_position_timestamp        = var.starting_position == "AT_TIMESTAMP" ? var.starting_position_timestamp : null
  parallelization_factor             = var.parallelization_factor
  bisect_batch_on_function_error     = var.bisect_batch_on_function_error
  maximum_retry_attempts             = var.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.maximum_record_age_in_seconds
  function_response_types            = var.function_response_types

  destination_config {
    on_failure {
      destination_arn = local.on_failure_arn
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.starting_position != "AT_TIMESTAMP" || var.starting_position_timestamp != null
      error_message = "starting_position_timestamp is required when starting_position is AT_TIMESTAMP."
    }
  }
}
