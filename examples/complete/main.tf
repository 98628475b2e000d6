provider "aws" {
  region = var.region
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  tags = {
    Project     = "cnm-ingest"
    Environment = "example"
  }
}

################################################################################
# Customer managed key for everything the pipeline stores
################################################################################

data "aws_iam_policy_document" "kms" {
  # In a key policy, Resource "*" means this key, and the account root
  # statement is what lets IAM policies grant use of the key:
  #checkov:skip=CKV_AWS_109:key policy, Resource "*" is the key itself
  #checkov:skip=CKV_AWS_111:key policy, Resource "*" is the key itself
  #checkov:skip=CKV_AWS_356:key policy, Resource "*" is the key itself
  # Key administration and IAM-granted use by the account (the pipeline's
  # roles get kms:Decrypt / GenerateDataKey on this key from the module).
  statement {
    sid       = "AccountRoot"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is the key itself

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # Encrypted CloudWatch log groups (functions, state machine).
  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }

  # SNS redriving undeliverable messages into the encrypted DLQ, and
  # CloudWatch alarms publishing to the encrypted alarm topic.
  statement {
    sid       = "ServicesPublishingToEncryptedTargets"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com", "cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "this" {
  description         = "${var.prefix} CNM ingest"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.kms.json

  tags = local.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.prefix}-cnm-ingest"
  target_key_id = aws_kms_key.this.key_id
}

################################################################################
# Staging bucket the workflow copies granules into
################################################################################

module "staging_bucket" {
  source = "../../modules/s3_bucket"

  bucket             = "${var.prefix}-staging-${local.account_id}"
  kms_key_arn        = aws_kms_key.this.arn
  versioning_enabled = true
  force_destroy      = true

  tags = local.tags
}

################################################################################
# The pipeline, every feature on
################################################################################

resource "aws_sns_topic" "provider_responses" {
  name              = "${var.prefix}-provider-responses"
  kms_master_key_id = aws_kms_key.this.arn

  tags = local.tags
}

module "cnm_ingest" {
  source = "../../"

  prefix               = var.prefix
  staging_bucket_name  = module.staging_bucket.bucket_id
  provider_bucket_arns = ["arn:${local.partition}:s3:::${var.provider_bucket_name}"]
  buckets = {
    public = { name = "${var.prefix}-public-${local.account_id}", type = "public" }
  }

  kms_key_arn        = aws_kms_key.this.arn
  log_retention_days = 90
  log_level          = "DEBUG"

  # NGAP-style account: every function in the VPC's private subnets (with a
  # security group made in vpc_id), every role under the permissions boundary.
  lambda_subnet_ids        = var.subnet_ids
  vpc_id                   = var.vpc_id
  permissions_boundary_arn = "arn:${local.partition}:iam::${local.account_id}:policy/${var.permissions_boundary_name}"
  role_path                = var.role_path

  # Workflow: full execution logging, and a DAAC step between SyncGranule and CnmResponse.
  state_machine_log_level = "ALL"
  extra_states_start_at   = "DaacPostSync"
  extra_states = jsonencode({
    DaacPostSync = {
      Type    = "Pass"
      Comment = "A DAAC's own processing step goes here."
      Next    = "CnmResponse"
    }
  })
  tracing_enabled       = true
  force_destroy_buckets = true

  # Streams: provisioned, two shards each, three days of retention.
  stream_mode                     = "PROVISIONED"
  notification_stream_shard_count = 2
  response_stream_shard_count     = 2
  stream_retention_hours          = 72

  # Consumer event source mapping.
  batch_size                         = 50
  maximum_batching_window_in_seconds = 5
  starting_position                  = "TRIM_HORIZON"
  parallelization_factor             = 2
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = 5
  maximum_record_age_in_seconds      = 7200
  function_response_types            = ["ReportBatchItemFailures"]
  on_failure_destination             = "sns"
  enhanced_fan_out                   = true
  rules_cache_seconds                = 30
  # A throttled StartExecution is tried 3 times in an invocation (default 10), then the record
  # goes back to the mapping as a batch item failure and is retried from there.
  start_max_attempts = 3

  lambda_function_settings = {
    defaults          = { memory_size = 512 }
    message_consumer  = { timeout = 600, memory_size = 1024, reserved_concurrent_executions = 20 }
    fallback_consumer = { reserved_concurrent_executions = 5 }
    sync_granule      = { memory_size = 2048 }
  }

  # Fallback, DLQ, hydrate, payloads.
  fallback_maximum_retry_attempts       = 2
  fallback_maximum_event_age_in_seconds = 3600
  max_get_records_calls                 = 200
  payload_bucket_versioning_enabled     = true
  payload_bucket_expiration_days        = 60
  log_max_bytes                         = 32768

  # Workflow.
  sync_retry_interval_seconds     = 15
  sync_retry_max_attempts         = 4
  response_retry_interval_seconds = 5
  response_retry_max_attempts     = 6

  # CNM responses also to a provider's topic (SNS attributes for its filters), with https URIs.
  response_destinations              = [aws_sns_topic.provider_responses.arn]
  response_destinations_kms_key_arns = [aws_kms_key.this.arn]
  distribution_endpoint              = "https://data.daac.example.org/"

  # Alarms, with a topic of their own.
  create_alarms             = true
  create_alarm_topic        = true
  alarm_email_addresses     = var.alarm_email_addresses
  iterator_age_threshold_ms = 300000
  alarm_period_seconds      = 60

  # Configuration.
  config_tables_deletion_protection_enabled = false
  providers_config = [
    { id = "PODAAC_SWOT", protocol = "s3", host = var.provider_bucket_name },
    { id = "PODAAC_SENTINEL6", protocol = "s3", host = var.provider_bucket_name, meta = { contact = "ops@example.org" } },
  ]
  collections = [
    {
      name                  = "SWOT_L2_LR_SSH"
      version               = "2.0"
      duplicate_handling    = "replace"
      granule_id_extraction = "^(.*)\\.(nc|h5)$"
      checksum_required     = true
    },
    {
      # The collection of the published CNM samples (shared/cnm/samples), which the demo sends.
      name               = "SWOT_Prod_l2:1"
      version            = "1"
      duplicate_handling = "replace"
    },
    {
      name               = "JASON_CS_S6A_L2_ALT_LR_STD_OST_NRT_F"
      version            = "F"
      url_path           = "file-staging/{stack}/{collection}/nrt"
      duplicate_handling = "skip"
      meta               = { latency = "nrt" }
    },
  ]
  rules = [
    {
      name       = "swot_l2_lr_ssh"
      collection = { name = "SWOT_L2_LR_SSH", version = "2.0" }
      provider   = "PODAAC_SWOT"
    },
    {
      name       = "cnm_samples"
      collection = { name = "SWOT_Prod_l2:1" }
      provider   = "PODAAC_SWOT"
    },
    {
      name       = "sentinel6_nrt_any_version"
      collection = { name = "JASON_CS_S6A_L2_ALT_LR_STD_OST_NRT_F" }
      provider   = "PODAAC_SENTINEL6"
      state      = "DISABLED"
      meta       = { note = "enable once the provider is onboarded" }
    },
  ]

  tags = local.tags
}
