# One KMS-encrypted Kinesis data stream (on-demand or provisioned).
# The root module uses it for the notification and the response stream, unless
# the caller brings existing streams.

resource "aws_kinesis_stream" "this" {
  name                      = var.name
  shard_count               = var.stream_mode == "PROVISIONED" ? var.shard_count : null
  retention_period          = var.retention_period
  encryption_type           = "KMS"
  kms_key_id                = var.kms_key_arn != null ? var.kms_key_arn : "alias/aws/kinesis"
  shard_level_metrics       = var.shard_level_metrics
  enforce_consumer_deletion = var.enforce_consumer_deletion

  stream_mode_details {
    stream_mode = var.stream_mode
  }

  tags = var.tags
}
