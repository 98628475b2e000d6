# The status store: executions and granules in one DynamoDB table (cnm_ingest.executions).
#
#   recorder (Step Functions status-change events) ──┐
#   StartStatus / StopStatus (the workflow's steps) ──┴─> <prefix>-executions <── cnm-ingest CLI, reconciliation
#   SyncGranule's commit order (cnm_ingest.commit_order, pk "STAGING#...") ──────┘
#
# Its own module so that both the workflow (which writes it from StartStatus/StopStatus and SyncGranule) and the
# recorder (which needs the workflow's state machine ARN for its EventBridge rule) take it as an input: the
# dependencies flow one way, executions -> workflow -> recorder. The item layout is in docs/INTERFACES.md.

resource "aws_dynamodb_table" "this" {
  name                        = coalesce(var.table_name, "${var.prefix}-executions")
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection_enabled

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  attribute {
    name = "status_key"
    type = "S"
  }

  attribute {
    name = "updated_at"
    type = "S"
  }

  global_secondary_index {
    name            = "by_status"
    projection_type = "ALL"

    key_schema {
      attribute_name = "status_key"
      key_type       = "HASH"
    }

    key_schema {
      attribute_name = "updated_at"
      key_type       = "RANGE"
    }
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery_enabled
  }

  tags = var.tags
}
