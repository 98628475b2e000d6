################################################################################
# Configuration tables
################################################################################

module "config_tables" {
  source = "./modules/config_tables"

  prefix                         = var.prefix
  rules                          = local.rules
  collections                    = var.collections
  providers_config               = var.providers_config
  deletion_protection_enabled    = var.config_tables_deletion_protection_enabled
  point_in_time_recovery_enabled = var.config_tables_point_in_time_recovery_enabled
  kms_key_arn                    = var.kms_key_arn

  tags = var.tags
}

################################################################################
# Message consumer
################################################################################

locals {
  # Environment the routing functions (message and fallback consumer) share (docs/INTERFACES.md).
  routing_environment = {
    RULES_TABLE         = module.config_tables.rules_table_name
    COLLECTIONS_TABLE   = module.config_tables.collections_table_name
    PROVIDERS_TABLE     = module.config_tables.providers_table_name
    RULES_CACHE_SECONDS = tostring(var.rules_cache_seconds)
    # Rules without a stream listen on the notification stream; the provider mismatch default (Cumulus).
    NOTIFICATION_STREAM_ARN = local.notification_stream_arn
    ALLOW_PROVIDER_MISMATCH = tostring(var.allow_provider_mismatch)
    PAYLOAD_BUCKET          = module.dead_letter.payload_bucket_name
    STACK                   = var.prefix
    BUCKETS                 = jsonencode(local.buckets)
    # The consumers build the workflow message: the same offload threshold as the workflow's tasks.
    WORKFLOW_OFFLOAD_BYTES = tostring(var.workflow_offload_bytes)
    # Parked, answered or handed over once per record across the consumers and hydrate.
    IDEMPOTENCY_TABLE = aws_dynamodb_table.idempotency.name
    # Bad records are parked directly (the message consumer) or after the retries (the fallback consumer).
    DLQ_URL = module.dead_letter.dlq_url
  }
}

module "consumer" {
  source = "./modules/consumer"

  function = merge(local.functions.message_consumer, {
    environment_variables = merge(local.functions.message_consumer.environment_variables, local.routing_environment, {
      FALLBACK_TOPIC_ARN  = module.dead_letter.fallback_topic_arn
      RESPONSE_STREAM_ARN = local.response_stream_arn
    })
  })

  start_concurrency  = var.start_concurrency
  start_rate_limit   = var.start_rate_limit
  start_rate_burst   = var.start_rate_burst
  start_max_attempts = var.start_max_attempts

  stream_arn          = local.notification_stream_arn
  rule_stream_arns    = local.rule_stream_arns
  enhanced_fan_out    = var.enhanced_fan_out
  config_table_arns   = values(module.config_tables.table_arns)
  state_machine_arns  = local.state_machine_arns
  fallback_topic_arn  = module.dead_letter.fallback_topic_arn
  response_stream_arn = local.response_stream_arn
  payload_objects_arn = local.payload_objects_arn
  dlq_arn             = module.dead_letter.dlq_arn

  idempotency_table_arn        = aws_dynamodb_table.idempotency.arn
  workflow_payload_objects_arn = local.workflow_payload_objects_arn

  event_source_mapping = {
    batch_size                         = var.batch_size
    maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
    starting_position                  = var.starting_position
    starting_position_timestamp        = var.starting_position_timestamp
    parallelization_factor             = var.parallelization_factor
    bisect_batch_on_function_error     = var.bisect_batch_on_function_error
    maximum_retry_attempts             = var.maximum_retry_attempts
    maximum_record_age_in_seconds      = var.maximum_record_age_in_seconds
    function_response_types            = var.function_response_types
  }
  on_failure_destination     = var.on_failure_destination
  on_failure_destination_arn = module.dead_letter.on_failure_destination_arn
}

################################################################################
# Fallback consumer (fallback topic -> retries -> DLQ)
################################################################################

module "fallback" {
  source = "./modules/fallback"

  function = merge(local.functions.fallback_consumer, {
    environment_variables = merge(local.functions.fallback_consumer.environment_variables, local.routing_environment, {
      RESPONSE_STREAM_ARN = local.response_stream_arn
      # It starts executions too: under the same cap as the message consumer.
      START_RATE_LIMIT   = tostring(var.start_rate_limit)
      START_RATE_BURST   = tostring(var.start_rate_burst)
      START_MAX_ATTEMPTS = tostring(var.start_max_attempts)
    })
  })

  topic_arn           = module.dead_letter.fallback_topic_arn
  dlq_arn             = module.dead_letter.dlq_arn
  config_table_arns   = values(module.config_tables.table_arns)
  state_machine_arns  = local.state_machine_arns
  payload_objects_arn = local.payload_objects_arn

  idempotency_table_arn        = aws_dynamodb_table.idempotency.arn
  response_stream_arn          = local.response_stream_arn
  workflow_payload_objects_arn = local.workflow_payload_objects_arn

  maximum_retry_attempts       = var.fallback_maximum_retry_attempts
  maximum_event_age_in_seconds = var.fallback_maximum_event_age_in_seconds
}

################################################################################
# Hydrate (failed batches from the SNS on-failure destination -> DLQ)
################################################################################

module "hydrate" {
  source = "./modules/hydrate"
  count  = var.on_failure_destination == "sns" ? 1 : 0

  function = merge(local.functions.hydrate, {
    environment_variables = merge(
      local.functions.hydrate.environment_variables,
      # hydrate routes a record as the consumer would, to name its execution and skip one already started.
      local.routing_environment,
      {
        MAX_GET_RECORDS_CALLS = tostring(var.max_get_records_calls)
      },
      var.hydrate_get_records_limit == null ? {} : { GET_RECORDS_LIMIT = tostring(var.hydrate_get_records_limit) },
    )
  })

  failed_batch_topic_arn = module.dead_letter.failed_batch_topic_arn
  stream_arn             = local.notification_stream_arn
  rule_stream_arns       = local.rule_stream_arns
  dlq_arn                = module.dead_letter.dlq_arn
  payload_objects_arn    = local.payload_objects_arn
  idempotency_table_arn  = aws_dynamodb_table.idempotency.arn
  config_table_arns      = values(module.config_tables.table_arns)
  state_machine_arns     = local.state_machine_arns
}

################################################################################
# Dead-letter queue policy: composed here, after every writer exists
################################################################################

data "aws_iam_policy_document" "dead_letter" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [module.dead_letter.dlq_arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "PipelineFunctionsSend"
    actions   = ["sqs:SendMessage"]
    resources = [module.dead_letter.dlq_arn]

    principals {
      type = "AWS"
      # Every function that parks in the DLQ: the message consumer (bad records), the fallback consumer
      # (after its retries), hydrate (failed batches) and the workflow's CnmResponse (undeliverable responses).
      identifiers = concat(
        [module.consumer.role_arn, module.fallback.role_arn, module.workflow.function_role_arns["cnm_response"]],
        [for h in module.hydrate : h.role_arn],
      )
    }
  }

  statement {
    sid       = "SnsRedriveUndeliverable"
    actions   = ["sqs:SendMessage"]
    resources = [module.dead_letter.dlq_arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = module.dead_letter.dlq_sns_source_topic_arns
    }
  }
}

resource "aws_sqs_queue_policy" "dead_letter" {
  queue_url = module.dead_letter.dlq_url
  policy    = data.aws_iam_policy_document.dead_letter.json
}
