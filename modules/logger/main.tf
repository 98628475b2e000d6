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

  function    = var.function
  policy_json = data.aws_iam_policy_document.this.json
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

  tags = var.function.tags
}
