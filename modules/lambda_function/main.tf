# Generic Lambda function: function + least-privilege role + explicit log group,
# with optional layer(s), environment, tracing, dead-letter and asynchronous
# invocation (retries / on-failure destination) configuration. Every function of
# the pipeline is an instance of this module.

data "aws_partition" "current" {}

locals {
  log_group_name = "/aws/lambda/${var.function_name}"
  kms_key_arns   = concat(var.kms_key_arn == null ? [] : [var.kms_key_arn], var.additional_kms_key_arns)
  has_async_dest = var.create_async_event_config && var.async_on_failure_destination_arn != null
}

################################################################################
# Log group (created explicitly so that retention and encryption are ours)
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

################################################################################
# IAM role
################################################################################

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.function_name
  description        = "Execution role of the Lambda function ${var.function_name}"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "this" {
  source_policy_documents = var.policy_json == null ? [] : [var.policy_json]

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    # X-Ray has no resource-level permissions: Resource "*" is unavoidable here.
    for_each = var.tracing_enabled ? [1] : []

    content {
      sid       = "XRayWrite"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = length(local.kms_key_arns) > 0 ? [1] : []

    content {
      sid       = "UseCustomerKeys"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKey*", "kms:DescribeKey"]
      resources = distinct(local.kms_key_arns)
    }
  }

  dynamic "statement" {
    for_each = var.dead_letter_target_arn == null ? [] : [var.dead_letter_target_arn]

    content {
      sid       = "DeadLetterTarget"
      actions   = [startswith(statement.value, "arn:${data.aws_partition.current.partition}:sns:") ? "sns:Publish" : "sqs:SendMessage"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.has_async_dest ? [var.async_on_failure_destination_arn] : []

    content {
      sid       = "AsyncOnFailureDestination"
      actions   = [var.async_on_failure_destination_type == "sns" ? "sns:Publish" : "sqs:SendMessage"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.function_name}-permissions"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

################################################################################
# Function
################################################################################

resource "aws_lambda_function" "this" {
  function_name    = var.function_name
  description      = var.description
  role             = aws_iam_role.this.arn
  filename         = var.filename
  source_code_hash = var.source_code_hash
  handler          = var.handler
  runtime          = var.runtime
  architectures    = var.architectures
  layers           = var.layers
  timeout          = var.timeout
  memory_size      = var.memory_size
  kms_key_arn      = var.kms_key_arn

  reserved_concurrent_executions = var.reserved_concurrent_executions == null ? -1 : var.reserved_concurrent_executions

  dynamic "environment" {
    for_each = length(var.environment_variables) > 0 ? [1] : []

    content {
      variables = var.environment_variables
    }
  }

  tracing_config {
    mode = var.tracing_enabled ? "Active" : "PassThrough"
  }

  dynamic "dead_letter_config" {
    for_each = var.dead_letter_target_arn == null ? [] : [var.dead_letter_target_arn]

    content {
      target_arn = dead_letter_config.value
    }
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tags = var.tags

  # The role's permissions (logs, destinations) must exist before the first invocation.
  depends_on = [aws_iam_role_policy.this, aws_cloudwatch_log_group.this]
}

resource "aws_lambda_function_event_invoke_config" "this" {
  count = var.create_async_event_config ? 1 : 0

  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = var.async_maximum_retry_attempts
  maximum_event_age_in_seconds = var.async_maximum_event_age_in_seconds

  dynamic "destination_config" {
    for_each = local.has_async_dest ? [var.async_on_failure_destination_arn] : []

    content {
      on_failure {
        destination = destination_config.value
      }
    }
  }
}
