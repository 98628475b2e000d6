# A DAAC's own repository deploying the CNM ingest release, LP DAAC style: an NGAP account
# (functions in the "Private application" subnets of the application VPC, every role under
# the NGAP permissions boundary), the DAAC's operations alarm topic, and the DAAC's tags.
# One configuration, one state and one env/<name>.tfvars per environment (sit, uat, prod).

provider "aws" {
  region = var.region
}

locals {
  tags = merge(var.tags, {
    Deployment  = var.prefix
    Environment = var.environment
  })
}

################################################################################
# What the NGAP account already has (read, never created here)
################################################################################

data "aws_vpc" "application" {
  tags = { Name = var.vpc_name }
}

data "aws_subnets" "private" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.application.id]
  }

  filter {
    name   = "tag:Name"
    values = var.subnet_names
  }
}

data "aws_sns_topic" "alarms" {
  name = var.alarm_topic_name
}

################################################################################
# The pipeline, from the release archive (download URL pinned to a version)
################################################################################

module "cnm_ingest" {
  #checkov:skip=CKV_TF_1:a release archive, pinned by the version in its URL (no git source to pin to a commit)
  #checkov:skip=CKV_TF_2:a release archive, pinned by the version in its URL (no git source to pin to a tag)
  source = "https://example.org/your-org/cnm-ingest/releases/download/v0.2.0/cnm-ingest-0.2.0.zip"

  prefix              = var.prefix
  staging_bucket_name = var.staging_bucket_name

  # known from the environment's tfvars, so a plan needs no STS call
  account_id = var.account_id

  provider_bucket_arns = [for name in var.provider_bucket_names : "arn:aws:s3:::${name}"]
  kms_key_arn          = var.kms_key_arn
  log_retention_days   = var.log_retention_days

  # NGAP: functions in the private subnets (security group <prefix>-lambda made in the VPC),
  # every role under the permissions boundary
  lambda_subnet_ids        = data.aws_subnets.private.ids
  vpc_id                   = data.aws_vpc.application.id
  permissions_boundary_arn = "arn:aws:iam::${var.account_id}:policy/${var.permissions_boundary_name}"

  alarm_topic_arn = data.aws_sns_topic.alarms.arn

  # an environment that is torn down and rebuilt (sit) may drop its tables and buckets
  config_tables_deletion_protection_enabled = var.environment == "prod"
  force_destroy_buckets                     = var.environment != "prod"

  tags = local.tags
}
