# DynamoDB configuration tables (rules, collections, providers) in the layout of
# docs/INTERFACES.md, seeded from Terraform variables: scalar attributes for
# what the consumer matches on, one JSON string attribute for the rest.
#
# An operator may disable a rule by setting its `state` to DISABLED with
# UpdateItem; the next `terraform apply` restores what the `rules` variable says.

locals {
  tables = {
    rules       = { hash_key = "name", range_key = null }
    collections = { hash_key = "name", range_key = "version" }
    providers   = { hash_key = "id", range_key = null }
  }

  rules       = { for r in var.rules : r.name => r }
  collections = { for c in var.collections : "${c.name}___${c.version}" => c }
  providers   = { for p in var.providers_config : p.id => p }
}

resource "aws_dynamodb_table" "this" {
  for_each = local.tables

  name                        = "${var.prefix}-${each.key}"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash_key
  range_key                   = each.value.range_key
  deletion_protection_enabled = var.deletion_protection_enabled

  attribute {
    name = each.value.hash_key
    type = "S"
  }

  dynamic "attribute" {
    for_each = each.value.range_key == null ? [] : [each.value.range_key]

    content {
      name = attribute.value
      type = "S"
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

resource "aws_dynamodb_table_item" "rule" {
  for_each = local.rules

  table_name = aws_dynamodb_table.this["rules"].name
  hash_key   = aws_dynamodb_table.this["rules"].hash_key

  item = jsonencode({
    name               = { S = each.value.name }
    collection_name    = { S = each.value.collection.name }
    collection_version = { S = each.value.collection.version }
    provider           = { S = each.value.provider }
    workflow_arn       = { S = each.value.workflow_arn }
    workflow_name      = { S = element(split(":", each.value.workflow_arn), 6) }
    state              = { S = each.value.state }
    meta               = { S = jsonencode(each.value.meta) }
    # The stream the rule listens on ("" = any, when the rule is written outside the root module).
    stream_arn            = { S = each.value.stream_arn }
    execution_name_prefix = { S = each.value.execution_name_prefix }
  })
}

resource "aws_dynamodb_table_item" "collection" {
  for_each = local.collections

  table_name = aws_dynamodb_table.this["collections"].name
  hash_key   = aws_dynamodb_table.this["collections"].hash_key
  range_key  = aws_dynamodb_table.this["collections"].range_key

  item = jsonencode({
    name    = { S = each.value.name }
    version = { S = each.value.version }
    config = { S = jsonencode(merge(
      {
        url_path             = each.value.url_path
        duplicate_handling   = each.value.duplicate_handling
        other_owner_handling = each.value.other_owner_handling
        checksum_required    = each.value.checksum_required
        meta                 = each.value.meta
      },
      each.value.granule_id_extraction == null ? {} : { granule_id_extraction = each.value.granule_id_extraction },
      each.value.buckets == null ? {} : { buckets = each.value.buckets },
    )) }
  })
}

resource "aws_dynamodb_table_item" "provider" {
  for_each = local.providers

  table_name = aws_dynamodb_table.this["providers"].name
  hash_key   = aws_dynamodb_table.this["providers"].hash_key

  item = jsonencode({
    id = { S = each.value.id }
    config = { S = jsonencode(merge({
      protocol = each.value.protocol
      host     = each.value.host
      meta     = each.value.meta
      }, { for k in ["port", "credentials_secret_arn", "globalConnectionLimit", "host_key", "allowed_prefixes", "allowed_networks"] : k => each.value[k] if each.value[k] != null }))
    }
  })
}
