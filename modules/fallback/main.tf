# Fallback consumer: subscribed to the fallback topic (modules/dead_letter) the
# message consumer publishes records to that it could not route or start; it is
# invoked asynchronously and retried, and what still fails goes to the
# dead-letter queue as Lambda's on-failure destination. SNS deliveries that fail
# for good are redriven to the same queue.

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
    resources = [var.dlq_arn]
  }

  statement {
    sid       = "IdempotencyRecords"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
    resources = [var.idempotency_table_arn]
  }

  statement {
    sid       = "WriteResponses"
    actions   = ["kinesis:PutRecord"]
    resources = [var.response_stream_arn]
  }

  statement {
    sid       = "LargePayloads"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = [var.payload_objects_arn, var.workflow_payload_objects_arn]
  }
}

module "function" {
  source = "../lambda_function"

  function    = var.function
  policy_json = data.aws_iam_policy_document.this.json

  create_async_event_config          = true
  async_maximum_retry_attempts       = var.maximum_retry_attempts
  async_maximum_event_age_in_seconds = var.maximum_event_age_in_seconds
  async_on_failure_destination_arn   = var.dlq_arn
}

resource "aws_lambda_permission" "sns" {
  statement_id  = "AllowFallbackTopic"
  action        = "lambda:InvokeFunction"
  function_name = module.function.function_name
  principal     = "sns.amazonaws.com"
  source_arn    = var.topic_arn
}

resource "aws_sns_topic_subscription" "fallback" {
  topic_arn = var.topic_arn
  protocol  = "lambda"
  endpoint  = module.function.function_arn

  # A message SNS cannot deliver to the function at all still ends in the DLQ
  # (the root module's queue policy lets SNS send for this topic).
  redrive_policy = jsonencode({ deadLetterTargetArn = var.dlq_arn })

  depends_on = [aws_lambda_permission.sns]
}
