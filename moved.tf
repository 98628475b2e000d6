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

# One status store (issue 21): the recorder's executions table becomes modules/executions' table, which
# the workflow (StartStatus/StopStatus, SyncGranule's commit order) and the recorder both take as an input.
# Same name, keys and items: nothing is copied. A stack applied with create_recorder = false has no such
# instance: the table is created. The workflow's old status table (module.workflow.aws_dynamodb_table.status,
# <prefix>-workflow-status) has no new address: the upgrade destroys it unless it is taken out of the state
# first (CHANGELOG.md, "Upgrading to 0.3.0").
moved {
  from = module.recorder[0].aws_dynamodb_table.executions
  to   = module.executions.aws_dynamodb_table.this
}
