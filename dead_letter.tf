################################################################################
# Shared sinks: dead-letter queue, fallback and failed-batch topics, payload
# bucket. At the bottom of the module graph: modules/dead_letter reads no other
# module; the functions writing to these sinks (ingest.tf) receive their ARNs.
# The DLQ policy naming those writers is composed after them, in ingest.tf.
################################################################################

module "dead_letter" {
  source = "./modules/dead_letter"

  prefix                        = var.prefix
  account_id                    = var.account_id
  kms_key_arn                   = var.kms_key_arn
  dlq_redrive_source_queue_arns = var.dlq_redrive_source_queue_arns

  on_failure_destination   = var.on_failure_destination
  on_failure_s3_bucket_arn = var.on_failure_s3_bucket_arn

  payload_bucket_name               = var.payload_bucket_name
  payload_bucket_versioning_enabled = var.payload_bucket_versioning_enabled
  payload_bucket_expiration_days    = var.payload_bucket_expiration_days
  force_destroy_buckets             = var.force_destroy_buckets

  tags = var.tags
}

locals {
  # The payload objects the handlers write and read (cnm_ingest.dlq fixes the key prefix).
  payload_objects_arn = "${module.dead_letter.payload_bucket_arn}/${local.payload_key_prefix}*"
  # The workflow message's large parts (cnm_ingest.workflow.payload fixes the key prefix): the consumers write them
  # when they start an execution, the workflow's tasks read and rewrite them.
  workflow_payload_objects_arn = "${module.dead_letter.payload_bucket_arn}/${local.workflow_payload_key_prefix}*"
}
