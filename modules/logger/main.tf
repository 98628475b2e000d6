# Logger: a function with its own event source mapping on a stream, logging the
# decoded records (size-capped). Instantiated for the notification stream
# (inbound) and the response stream (outbound). Best effort: finite retries,
# bisection and partial batch responses, no on-failure destination.

data "aws_iam_policy_document" "this" {
  statement {
    sid = "ReadStream"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
    ]
    resources = [var.stream_arn]
  }
}

module "function" {
  source = "../lambda_function"

  function_name                  = var.function_name
  description                    = var.description
  filename                       = var.package.filename
  source_code_hash               = var.package.source_code_hash
  handler                        = var.package.handler
  runtime                        = var.runtime
  layers                         = var.layers
  timeout                        = var.timeout
  memory_size                    = var.memory_size
  reserved_concurrent_executions = var.reserved_concurrent_executions
  environment_variables          = merge(var.environment_variables, { LOG_MAX_BYTES = tostring(var.log_max_bytes) })
  policy_json                    = data.aws_iam_policy_document.this.json
  tracing_enabled                = var.tracing_enabled
  log_retention_days             = var.log_retention_days
  kms_key_arn                    = var.kms_key_arn
  additional_kms_key_arns        = var.additional_kms_key_arns

  tags = var.tags
}

resource "aws_lambda_event_source_mapping" "this" {
  event_source_arn                   = var.stream_arn
  function_name                      = module.function.function_arn
  enabled                            = var.esm_enabled
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  starting_position                  = var.starting_position
  bisect_batch_on_function_error     = var.bisect_batch_on_function_error
  maximum_retry_attempts             = var.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.maximum_record_age_in_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  tags = var.tags
}
