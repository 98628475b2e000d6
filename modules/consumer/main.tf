# Message consumer: the Lambda function reading the notification stream through
# an event source mapping with partial batch responses, bisection, finite
# retries and a finite record age. A batch it gives up on goes to the
# on-failure destination it is given (modules/dead_letter: the failed-batch
# topic, which the hydrate function re-reads into the DLQ, or a bucket).

locals {
  on_failure_to_sns = var.on_failure_destination == "sns"
  # Every stream the function reads: the notification stream, and each further stream rules name
  # (keyed by its ARN; the keys must be known at plan time). One mapping per stream, shared by its rules.
  streams      = merge({ notification = var.stream_arn }, { for arn in var.rule_stream_arns : arn => arn })
  event_source = { for k, arn in local.streams : k => var.enhanced_fan_out ? aws_kinesis_stream_consumer.this[k].arn : arn }
}

################################################################################
# Enhanced fan-out
################################################################################

resource "aws_kinesis_stream_consumer" "this" {
  for_each = var.enhanced_fan_out ? local.streams : {}

  name       = var.function.name
  stream_arn = each.value
}

# One stream became a map of streams (rules may name their stream).
moved {
  from = aws_kinesis_stream_consumer.this[0]
  to   = aws_kinesis_stream_consumer.this["notification"]
}

moved {
  from = aws_lambda_event_source_mapping.this
  to   = aws_lambda_event_source_mapping.this["notification"]
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
    resources = values(local.streams)
  }

  dynamic "statement" {
    for_each = var.enhanced_fan_out ? [1] : []

    content {
      sid       = "ReadThroughEnhancedFanOut"
      actions   = ["kinesis:SubscribeToShard", "kinesis:DescribeStreamConsumer"]
      resources = [for c in aws_kinesis_stream_consumer.this : c.arn]
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
    resources = [var.idempotency_table_arn]
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
    resources = [var.payload_objects_arn, var.workflow_payload_objects_arn]
  }

  dynamic "statement" {
    for_each = local.on_failure_to_sns ? [1] : []

    content {
      sid       = "OnFailureToTopic"
      actions   = ["sns:Publish"]
      resources = [var.on_failure_destination_arn]
    }
  }

  dynamic "statement" {
    for_each = local.on_failure_to_sns ? [] : [1]

    content {
      sid       = "OnFailureToBucket"
      actions   = ["s3:PutObject", "s3:ListBucket"]
      resources = [var.on_failure_destination_arn, "${var.on_failure_destination_arn}/*"]
    }
  }
}

module "function" {
  source = "../lambda_function"

  # The start pacing and the idempotency window are this module's settings, so they are added here.
  function = merge(var.function, {
    environment_variables = merge(var.function.environment_variables, {
      IDEMPOTENCY_TTL_SECONDS = tostring(var.idempotency_ttl_seconds)
      START_CONCURRENCY       = tostring(var.start_concurrency)
      START_RATE_LIMIT        = tostring(var.start_rate_limit)
      START_RATE_BURST        = tostring(var.start_rate_burst)
      START_MAX_ATTEMPTS      = tostring(var.start_max_attempts)
    })
  })
  policy_json = data.aws_iam_policy_document.this.json
}

################################################################################
# Event source mapping
################################################################################

resource "aws_lambda_event_source_mapping" "this" {
  for_each = local.streams

  event_source_arn                   = local.event_source[each.key]
  function_name                      = module.function.function_arn
  enabled                            = true
  batch_size                         = var.event_source_mapping.batch_size
  maximum_batching_window_in_seconds = var.event_source_mapping.maximum_batching_window_in_seconds
  starting_position                  = var.event_source_mapping.starting_position
  starting_position_timestamp        = var.event_source_mapping.starting_position == "AT_TIMESTAMP" ? var.event_source_mapping.starting_position_timestamp : null
  parallelization_factor             = var.event_source_mapping.parallelization_factor
  bisect_batch_on_function_error     = var.event_source_mapping.bisect_batch_on_function_error
  maximum_retry_attempts             = var.event_source_mapping.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.event_source_mapping.maximum_record_age_in_seconds
  function_response_types            = var.event_source_mapping.function_response_types

  destination_config {
    on_failure {
      destination_arn = var.on_failure_destination_arn
    }
  }

  tags = var.function.tags

  lifecycle {
    precondition {
      condition     = var.event_source_mapping.starting_position != "AT_TIMESTAMP" || var.event_source_mapping.starting_position_timestamp != null
      error_message = "starting_position_timestamp is required when starting_position is AT_TIMESTAMP."
    }
  }
}
