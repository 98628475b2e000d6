################################################################################
# Addresses that changed (an existing deployment plans with nothing destroyed)
################################################################################

# The shared sinks moved from modules/fallback and modules/consumer into
# modules/dead_letter, and the DLQ policy to the root (issue 11).

moved {
  from = module.payload_bucket
  to   = module.dead_letter.module.payload_bucket
}

moved {
  from = module.fallback.aws_sqs_queue.dlq
  to   = module.dead_letter.aws_sqs_queue.dlq
}

moved {
  from = module.fallback.aws_sqs_queue_redrive_allow_policy.dlq
  to   = module.dead_letter.aws_sqs_queue_redrive_allow_policy.dlq
}

moved {
  from = module.fallback.aws_sqs_queue_policy.dlq
  to   = aws_sqs_queue_policy.dead_letter
}

moved {
  from = module.fallback.aws_sns_topic.fallback
  to   = module.dead_letter.aws_sns_topic.fallback
}

moved {
  from = module.consumer.aws_sns_topic.failed_batch
  to   = module.dead_letter.aws_sns_topic.failed_batch
}

moved {
  from = module.consumer.module.failed_batch_bucket
  to   = module.dead_letter.module.failed_batch_bucket
}

# The idempotency table shared by the message consumer, the fallback consumer and hydrate
# (issue 8) was first declared in modules/consumer; it belongs to no single writer.
moved {
  from = module.consumer.aws_dynamodb_table.idempotency
  to   = aws_dynamodb_table.idempotency
}
