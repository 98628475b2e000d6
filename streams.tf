################################################################################
# Streams (created here unless existing ones are given)
################################################################################

locals {
  create_notification_stream = var.existing_notification_stream_arn == null
  create_response_stream     = var.existing_response_stream_arn == null

  notification_stream_arn  = local.create_notification_stream ? module.notification_stream[0].stream_arn : var.existing_notification_stream_arn
  notification_stream_name = local.create_notification_stream ? module.notification_stream[0].stream_name : element(split("/", var.existing_notification_stream_arn), 1)
  response_stream_arn      = local.create_response_stream ? module.response_stream[0].stream_arn : var.existing_response_stream_arn
  response_stream_name     = local.create_response_stream ? module.response_stream[0].stream_name : element(split("/", var.existing_response_stream_arn), 1)

  # Customer keys of existing streams that the functions must also be granted.
  notification_stream_kms_keys = local.create_notification_stream || var.existing_notification_stream_kms_key_arn == null ? [] : [var.existing_notification_stream_kms_key_arn]
  response_stream_kms_keys     = local.create_response_stream || var.existing_response_stream_kms_key_arn == null ? [] : [var.existing_response_stream_kms_key_arn]
  response_stream_kms_key_arn  = local.create_response_stream ? var.kms_key_arn : var.existing_response_stream_kms_key_arn
}

module "notification_stream" {
  source = "./modules/streams"
  count  = local.create_notification_stream ? 1 : 0

  name             = "${var.prefix}-notifications"
  stream_mode      = var.stream_mode
  shard_count      = var.notification_stream_shard_count
  retention_period = var.stream_retention_hours
  kms_key_arn      = var.kms_key_arn

  tags = var.tags
}

module "response_stream" {
  source = "./modules/streams"
  count  = local.create_response_stream ? 1 : 0

  name             = "${var.prefix}-responses"
  stream_mode      = var.stream_mode
  shard_count      = var.response_stream_shard_count
  retention_period = var.stream_retention_hours
  kms_key_arn      = var.kms_key_arn

  tags = var.tags
}
