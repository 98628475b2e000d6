################################################################################
# Status store: executions and granules in one table (modules/executions), written by the recorder and the
# workflow's StartStatus/StopStatus through cnm_ingest.executions; read by the CLI and reconciliation
################################################################################

module "executions" {
  source = "./modules/executions"

  prefix                         = var.prefix
  kms_key_arn                    = var.kms_key_arn
  deletion_protection_enabled    = var.config_tables_deletion_protection_enabled
  point_in_time_recovery_enabled = var.config_tables_point_in_time_recovery_enabled

  tags = var.tags
}

################################################################################
# Idempotency table: park / answer / fallback once per stream record, shared by
# the message consumer, the fallback consumer and hydrate, and CnmResponse's
# once-markers (put, publish, park once per execution; IDEMPOTENCY_TABLE)
################################################################################

resource "aws_dynamodb_table" "idempotency" {
  name                        = "${var.prefix}-idempotency"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "id"
  deletion_protection_enabled = var.config_tables_deletion_protection_enabled

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
    kms_key_arn = var.kms_key_arn
  }

  point_in_time_recovery {
    enabled = true
  }

  tags = var.tags
}

