# Hydrate: subscribed to the failed-batch topic (modules/dead_letter). The ESM
# on-failure record has only the batch metadata (shard, sequence range); this
# function re-reads those records from the notification stream and parks each,
# payload included, in the DLQ. Its own failures (after Lambda's retries) also
# go to the DLQ, as AWS's invocation record carrying the batch metadata.

################################################################################
# Idempotency (Powertools): one record per failed batch (shard + sequence range)
################################################################################

resource "aws_dynamodb_table" "idempotency" {
  count = var.idempotency_enabled ? 1 : 0

  name                        = "${var.function.name}-idempotency"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "id"
  deletion_protection_enabled = false

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
    kms_key_arn = var.function.kms_key_arn
  }

  point_in_time_recovery {
    enabled = true
  }

  tags = var.function.tags
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

  dynamic "statement" {
    for_each = var.idempotency_enabled ? [1] : []

    content {
      sid       = "IdempotencyRecords"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
      resources = [aws_dynamodb_table.idempotency[0].arn]
    }
  }

  statement {
    sid       = "StoreLargePayloads"
    actions   = ["s3:PutObject"]
    resources = [var.payload_objects_arn]
  }
}

module "function" {
  source = "../lambda_function"

  # The table is this module's own resource, so its name is added here.
  function = merge(var.function, {
    environment_variables = merge(
      var.function.environment_variables,
      var.idempotency_enabled ? { IDEMPOTENCY_TABLE = aws_dynamodb_table.idempotency[0].name } : {},
    )
  })
  policy_json = data.aws_iam_policy_document.this.json

  create_async_event_config        = true
  async_on_failure_destination_arn = var.dlq_arn
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
