# The shared sinks of the pipeline, at the bottom of the module graph: this
# module reads no other module. It holds
#   - the dead-letter queue <prefix>-kinesisFailure (where every record that
#     cannot be processed ends, with its payload),
#   - the fallback topic <prefix>-fallback (records the message consumer could
#     not route or start),
#   - the failed-batch topic <prefix>-failed-batch, or bucket
#     <prefix>-failed-batches-<account> (the notification stream mapping's
#     on-failure destination, by on_failure_destination),
#   - the payload bucket (payloads too large for SNS/SQS).
# The writers are created afterwards and receive these ARNs; the DLQ's queue
# policy, which names every writer, is composed by the root module once the
# writers exist (aws_sqs_queue_policy.dead_letter).

# Only when the caller does not give the account id: a plan without STS sets var.account_id.
data "aws_caller_identity" "current" {
  count = var.account_id == null ? 1 : 0
}

locals {
  account_id = var.account_id != null ? var.account_id : data.aws_caller_identity.current[0].account_id
  topic_key  = var.kms_key_arn != null ? var.kms_key_arn : "alias/aws/sns"

  use_sns          = var.on_failure_destination == "sns"
  create_s3        = var.on_failure_destination == "s3" && var.on_failure_s3_bucket_arn == null
  on_failure_arn   = local.use_sns ? aws_sns_topic.failed_batch[0].arn : (local.create_s3 ? module.failed_batch_bucket[0].bucket_arn : var.on_failure_s3_bucket_arn)
  dlq_sns_redrives = concat([aws_sns_topic.fallback.arn], aws_sns_topic.failed_batch[*].arn)
}

################################################################################
# Dead-letter queue
################################################################################

resource "aws_sqs_queue" "dlq" {
  name                       = "${var.prefix}-kinesisFailure"
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

################################################################################
# Topics
################################################################################

resource "aws_sns_topic" "fallback" {
  name              = "${var.prefix}-fallback"
  kms_master_key_id = local.topic_key

  tags = var.tags
}

resource "aws_sns_topic" "failed_batch" {
  count = local.use_sns ? 1 : 0

  name              = "${var.prefix}-failed-batch"
  kms_master_key_id = local.topic_key

  tags = var.tags
}

################################################################################
# Buckets
################################################################################

module "failed_batch_bucket" {
  source = "../s3_bucket"
  count  = local.create_s3 ? 1 : 0

  bucket          = "${var.prefix}-failed-batches-${local.account_id}"
  kms_key_arn     = var.kms_key_arn
  expiration_days = var.on_failure_s3_expiration_days
  force_destroy   = var.force_destroy_buckets

  tags = var.tags
}

module "payload_bucket" {
  source = "../s3_bucket"

  bucket             = var.payload_bucket_name != null ? var.payload_bucket_name : "${var.prefix}-payloads-${local.account_id}"
  kms_key_arn        = var.kms_key_arn
  versioning_enabled = var.payload_bucket_versioning_enabled
  expiration_days    = var.payload_bucket_expiration_days
  force_destroy      = var.force_destroy_buckets

  tags = var.tags
}
