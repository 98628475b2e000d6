# cnm-ingest root module: wires the parts of the CNM ingest pipeline.
#
#   notification stream -> message consumer -> workflow -> response stream
#                            |-> fallback topic -> fallback consumer -> DLQ (kinesisFailure)
#                            |-> (batch given up) failed-batch topic -> hydrate -> DLQ
#   inbound / outbound loggers on both streams; config tables; alarms.

data "aws_caller_identity" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id

  ##############################################################################
  # Packages (build.py -> manifest.json, see docs/INTERFACES.md)
  ##############################################################################

  package_dir = var.package_dir != null ? var.package_dir : "${path.module}/build"
  manifest    = jsondecode(file("${local.package_dir}/manifest.json"))
  runtime     = local.manifest.runtime
  packages = {
    for name, fn in local.manifest.functions : name => {
      filename         = "${local.package_dir}/${fn.filename}"
      source_code_hash = fn.base64sha256
      handler          = fn.handler
    }
  }
  has_layer = contains(keys(local.manifest.layers), "deps")
  layer_arn = local.has_layer ? aws_lambda_layer_version.deps[0].arn : null
  layers    = local.has_layer ? [aws_lambda_layer_version.deps[0].arn] : []

  function_settings = {
    for k, d in {
      message_consumer  = { timeout = 300, memory_size = 512 }
      fallback_consumer = { timeout = 300, memory_size = 512 }
      hydrate           = { timeout = 300, memory_size = 512 }
      inbound_logger    = { timeout = 60, memory_size = 256 }
      outbound_logger   = { timeout = 60, memory_size = 256 }
      } : k => {
      timeout                        = coalesce(try(var.lambda_function_settings[k].timeout, null), d.timeout)
      memory_size                    = coalesce(try(var.lambda_function_settings[k].memory_size, null), d.memory_size)
      reserved_concurrent_executions = try(var.lambda_function_settings[k].reserved_concurrent_executions, null)
    }
  }

  ##############################################################################
  # Streams (created here unless existing ones are given)
  ##############################################################################

  create_notification_stream = var.existing_notification_stream_arn == null
  create_response_stream     = var.existing_response_stream_arn == null
  stream_kms_key_id          = var.kms_key_arn != null ? var.kms_key_arn : "alias/aws/kinesis"

  notification_stream_arn  = local.create_notification_stream ? module.notification_stream[0].stream_arn : var.existing_notification_stream_arn
  notification_stream_name = local.create_notification_stream ? module.notification_stream[0].stream_name : element(split("/", var.existing_notification_stream_arn), 1)
  response_stream_arn      = local.create_response_stream ? module.response_stream[0].stream_arn : var.existing_response_stream_arn
  response_stream_name     = local.create_response_stream ? module.response_stream[0].stream_name : element(split("/", var.existing_response_stream_arn), 1)

  # Customer keys of existing streams that the functions must also be granted.
  notification_stream_kms_keys = local.create_notification_stream || var.existing_notification_stream_kms_key_arn == null ? [] : [var.existing_notification_stream_kms_key_arn]
  response_stream_kms_keys     = local.create_response_stream || var.existing_response_stream_kms_key_arn == null ? [] : [var.existing_response_stream_kms_key_arn]
  response_stream_kms_key_arn  = local.create_response_stream ? var.kms_key_arn : var.existing_response_stream_kms_key_arn

  ##############################################################################
  # Rules -> workflows
  ##############################################################################

  default_workflow_arn = module.workflow.state_machine_arn
  rules = [
    for r in var.rules : {
      name         = r.name
      collection   = r.collection
      provider     = r.provider
      workflow_arn = r.workflow_arn != null ? r.workflow_arn : local.default_workflow_arn
      state        = r.state
      meta         = r.meta
    }
  ]
  state_machine_arns = distinct(concat([local.default_workflow_arn], [for r in var.rules : r.workflow_arn if r.workflow_arn != null]))

  ##############################################################################
  # Environment (docs/INTERFACES.md)
  ##############################################################################

  buckets = merge({ private = { name = var.staging_bucket_name, type = "private" } }, var.buckets)

  common_environment = {
    POWERTOOLS_LOG_LEVEL         = var.log_level
    POWERTOOLS_METRICS_NAMESPACE = var.prefix
  }

  routing_environment = merge(local.common_environment, {
    RULES_TABLE         = module.config_tables.rules_table_name
    COLLECTIONS_TABLE   = module.config_tables.collections_table_name
    PROVIDERS_TABLE     = module.config_tables.providers_table_name
    RULES_CACHE_SECONDS = tostring(var.rules_cache_seconds)
    PAYLOAD_BUCKET      = module.payload_bucket.bucket_id
    # The consumers build the workflow message: the same offload threshold as the workflow's tasks.
    WORKFLOW_OFFLOAD_BYTES = tostring(var.workflow_offload_bytes)
    STACK                  = var.prefix
    BUCKETS                = jsonencode(local.buckets)
  })
}

################################################################################
# Dependency layer
################################################################################

resource "aws_lambda_layer_version" "deps" {
  count = local.has_layer ? 1 : 0

  layer_name          = "${var.prefix}-deps"
  description         = "cnm-ingest runtime dependencies"
  filename            = "${local.package_dir}/${local.manifest.layers.deps.filename}"
  source_code_hash    = local.manifest.layers.deps.base64sha256
  compatible_runtimes = [local.runtime]
}

################################################################################
# Streams
################################################################################

module "notification_stream" {
  source = "./modules/streams"
  count  = local.create_notification_stream ? 1 : 0

  name             = "${var.prefix}-notifications"
  stream_mode      = var.stream_mode
  shard_count      = var.notification_stream_shard_count
  retention_period = var.stream_retention_hours
  kms_key_id       = local.stream_kms_key_id

  tags = var.tags
}

module "response_stream" {
  source = "./modules/streams"
  count  = local.create_response_stream ? 1 : 0

  name             = "${var.prefix}-responses"
  stream_mode      = var.stream_mode
  shard_count      = var.response_stream_shard_count
  retention_period = var.stream_retention_hours
  kms_key_id       = local.stream_kms_key_id

  tags = var.tags
}

################################################################################
# Payload bucket (payloads too large for SNS/SQS)
################################################################################

module "payload_bucket" {
  source = "./modules/s3_bucket"

  bucket             = var.payload_bucket_name != null ? var.payload_bucket_name : "${var.prefix}-payloads-${local.account_id}"
  kms_key_arn        = var.kms_key_arn
  versioning_enabled = var.payload_bucket_versioning_enabled
  expiration_days    = var.payload_bucket_expiration_days
  force_destroy      = var.force_destroy_buckets

  tags = var.tags
}

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
# Workflow (Step Functions state machine and its task functions)
################################################################################

module "workflow" {
  source = "./modules/workflow"

  prefix                          = var.prefix
  package_dir                     = local.package_dir
  manifest                        = local.manifest
  layer_arn                       = local.layer_arn
  response_stream_arn             = local.response_stream_arn
  response_stream_kms_key_arn     = local.response_stream_kms_key_arn
  staging_bucket_name             = var.staging_bucket_name
  provider_bucket_arns            = var.provider_bucket_arns
  payload_bucket_name             = module.payload_bucket.bucket_id
  payload_bucket_kms_key_arn      = var.kms_key_arn
  workflow_offload_bytes          = var.workflow_offload_bytes
  dlq_url                         = module.fallback.dlq_url
  dlq_arn                         = module.fallback.dlq_arn
  dlq_kms_key_arn                 = var.kms_key_arn
  log_retention_days              = var.log_retention_days
  kms_key_arn                     = var.kms_key_arn
  tags                            = var.tags
  sync_retry_interval_seconds     = var.sync_retry_interval_seconds
  sync_retry_max_attempts         = var.sync_retry_max_attempts
  response_retry_interval_seconds = var.response_retry_interval_seconds
  response_retry_max_attempts     = var.response_retry_max_attempts
  extra_states                    = var.extra_states
  extra_states_start_at           = var.extra_states_start_at
  extra_states_policy_json        = var.extra_states_policy_json
  log_level                       = var.state_machine_log_level
  function_log_level              = var.log_level
  tracing_enabled                 = var.tracing_enabled

  # CNM responses (issue 13)
  response_destinations              = var.response_destinations
  response_destinations_kms_key_arns = var.response_destinations_kms_key_arns
  distribution_endpoint              = var.distribution_endpoint
  placement_bucket_names             = [for b in values(local.buckets) : b.name]
  provider_secret_arns               = [for p in var.providers_config : p.credentials_secret_arn if p.credentials_secret_arn != null]
}

################################################################################
# Fallback topic, fallback consumer, dead-letter queue
################################################################################

module "fallback" {
  source = "./modules/fallback"

  prefix                         = var.prefix
  package                        = local.packages["fallback_consumer"]
  runtime                        = local.runtime
  layers                         = local.layers
  timeout                        = local.function_settings.fallback_consumer.timeout
  memory_size                    = local.function_settings.fallback_consumer.memory_size
  reserved_concurrent_executions = local.function_settings.fallback_consumer.reserved_concurrent_executions
  tracing_enabled                = var.tracing_enabled
  log_retention_days             = var.log_retention_days
  kms_key_arn                    = var.kms_key_arn

  environment_variables = merge(local.routing_environment, {
    POWERTOOLS_SERVICE_NAME = "fallback_consumer"
  })
  idempotency_table_name = module.consumer.idempotency_table_name
  idempotency_table_arn  = module.consumer.idempotency_table_arn
  response_stream_arn    = local.response_stream_arn

  config_table_arns            = values(module.config_tables.table_arns)
  state_machine_arns           = local.state_machine_arns
  payload_bucket_arn           = module.payload_bucket.bucket_arn
  maximum_retry_attempts       = var.fallback_maximum_retry_attempts
  maximum_event_age_in_seconds = var.fallback_maximum_event_age_in_seconds

  dlq_redrive_source_queue_arns = var.dlq_redrive_source_queue_arns
  dlq_sender_role_arns          = concat([module.consumer.role_arn], [for h in module.hydrate : h.role_arn])
  dlq_sns_source_topic_arns     = compact([module.consumer.failed_batch_topic_arn])

  tags = var.tags
}

################################################################################
# Message consumer
################################################################################

module "consumer" {
  source = "./modules/consumer"

  prefix                         = var.prefix
  package                        = local.packages["message_consumer"]
  runtime                        = local.runtime
  layers                         = local.layers
  timeout                        = local.function_settings.message_consumer.timeout
  memory_size                    = local.function_settings.message_consumer.memory_size
  reserved_concurrent_executions = local.function_settings.message_consumer.reserved_concurrent_executions
  tracing_enabled                = var.tracing_enabled
  log_retention_days             = var.log_retention_days
  kms_key_arn                    = var.kms_key_arn
  additional_kms_key_arns        = concat(local.notification_stream_kms_keys, local.response_stream_kms_keys)

  environment_variables = merge(local.routing_environment, {
    POWERTOOLS_SERVICE_NAME = "message_consumer"
    FALLBACK_TOPIC_ARN      = module.fallback.topic_arn
    RESPONSE_STREAM_ARN     = local.response_stream_arn
  })

  stream_arn          = local.notification_stream_arn
  config_table_arns   = values(module.config_tables.table_arns)
  state_machine_arns  = local.state_machine_arns
  fallback_topic_arn  = module.fallback.topic_arn
  response_stream_arn = local.response_stream_arn
  payload_bucket_arn  = module.payload_bucket.bucket_arn
  dlq_arn             = module.fallback.dlq_arn
  dlq_url             = module.fallback.dlq_url
  start_concurrency   = var.start_concurrency
  start_rate_limit    = var.start_rate_limit
  start_rate_burst    = var.start_rate_burst

  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  starting_position                  = var.starting_position
  starting_position_timestamp        = var.starting_position_timestamp
  parallelization_factor             = var.parallelization_factor
  bisect_batch_on_function_error     = var.bisect_batch_on_function_error
  maximum_retry_attempts             = var.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.maximum_record_age_in_seconds
  function_response_types            = var.function_response_types
  on_failure_destination             = var.on_failure_destination
  on_failure_s3_bucket_arn           = var.on_failure_s3_bucket_arn
  force_destroy_buckets              = var.force_destroy_buckets
  enhanced_fan_out                   = var.enhanced_fan_out

  tags = var.tags
}

################################################################################
# Hydrate (failed batches from the SNS on-failure destination -> DLQ)
################################################################################

module "hydrate" {
  source = "./modules/hydrate"
  count  = var.on_failure_destination == "sns" ? 1 : 0

  prefix                         = var.prefix
  package                        = local.packages["hydrate"]
  runtime                        = local.runtime
  layers                         = local.layers
  timeout                        = local.function_settings.hydrate.timeout
  memory_size                    = local.function_settings.hydrate.memory_size
  reserved_concurrent_executions = local.function_settings.hydrate.reserved_concurrent_executions
  tracing_enabled                = var.tracing_enabled
  log_retention_days             = var.log_retention_days
  kms_key_arn                    = var.kms_key_arn
  additional_kms_key_arns        = local.notification_stream_kms_keys

  environment_variables = merge(local.routing_environment, {
    POWERTOOLS_SERVICE_NAME = "hydrate"
  })
  idempotency_table_name = module.consumer.idempotency_table_name
  idempotency_table_arn  = module.consumer.idempotency_table_arn
  config_table_arns      = values(module.config_tables.table_arns)
  state_machine_arns     = local.state_machine_arns

  failed_batch_topic_arn = module.consumer.failed_batch_topic_arn
  stream_arn             = local.notification_stream_arn
  dlq_arn                = module.fallback.dlq_arn
  dlq_url                = module.fallback.dlq_url
  payload_bucket_arn     = module.payload_bucket.bucket_arn
  max_get_records_calls  = var.max_get_records_calls
  get_records_limit      = var.hydrate_get_records_limit

  tags = var.tags
}

################################################################################
# Loggers
################################################################################

locals {
  loggers = {
    for role, logger in {
      inbound_logger = {
        create      = var.create_inbound_logger
        description = "CNM ingest: logs the notification stream"
        stream_arn  = local.notification_stream_arn
        kms_keys    = local.notification_stream_kms_keys
      }
      outbound_logger = {
        create      = var.create_outbound_logger
        description = "CNM ingest: logs the response stream"
        stream_arn  = local.response_stream_arn
        kms_keys    = local.response_stream_kms_keys
      }
    } : role => logger if logger.create
  }
}

module "logger" {
  source   = "./modules/logger"
  for_each = local.loggers

  function_name                  = "${var.prefix}-${replace(each.key, "_", "-")}"
  description                    = each.value.description
  package                        = local.packages["logger"]
  runtime                        = local.runtime
  layers                         = local.layers
  timeout                        = local.function_settings[each.key].timeout
  memory_size                    = local.function_settings[each.key].memory_size
  reserved_concurrent_executions = local.function_settings[each.key].reserved_concurrent_executions
  tracing_enabled                = var.tracing_enabled
  log_retention_days             = var.log_retention_days
  kms_key_arn                    = var.kms_key_arn
  additional_kms_key_arns        = each.value.kms_keys
  environment_variables          = merge(local.common_environment, { POWERTOOLS_SERVICE_NAME = each.key })

  stream_arn    = each.value.stream_arn
  log_max_bytes = var.log_max_bytes

  tags = var.tags
}

################################################################################
# Alarms
################################################################################

locals {
  function_names = merge(
    {
      message_consumer  = module.consumer.function_name
      fallback_consumer = module.fallback.function_name
    },
    { for h in module.hydrate : "hydrate" => h.function_name },
    { for r in module.recorder : "recorder" => r.function_name },
    { for role, l in module.logger : role => l.function_name },
    module.workflow.function_names,
  )
  function_arns = merge(
    {
      message_consumer  = module.consumer.function_arn
      fallback_consumer = module.fallback.function_arn
    },
    { for h in module.hydrate : "hydrate" => h.function_arn },
    { for r in module.recorder : "recorder" => r.function_arn },
    { for role, l in module.logger : role => l.function_arn },
    module.workflow.function_arns,
  )
}

module "alarms" {
  source = "./modules/alarms"
  count  = var.create_alarms ? 1 : 0

  prefix                    = var.prefix
  notification_stream_name  = local.notification_stream_name
  consumer_function_name    = module.consumer.function_name
  dlq_name                  = module.fallback.dlq_name
  function_names            = local.function_names
  state_machine_arns        = merge({ cnm_workflow = module.workflow.state_machine_arn }, var.alarm_state_machine_arns)
  iterator_age_threshold_ms = var.iterator_age_threshold_ms
  period_seconds            = var.alarm_period_seconds
  create_topic              = var.create_alarm_topic
  topic_arn                 = var.alarm_topic_arn
  topic_subscription_emails = var.alarm_email_addresses
  kms_key_arn               = var.kms_key_arn

  tags = var.tags
}

################################################################################
# Recorder (execution records from Step Functions status-change events)
################################################################################

module "recorder" {
  source = "./modules/recorder"
  count  = var.create_recorder ? 1 : 0

  prefix                         = var.prefix
  package                        = local.packages["recorder"]
  runtime                        = local.runtime
  layers                         = local.layers
  tracing_enabled                = var.tracing_enabled
  log_retention_days             = var.log_retention_days
  kms_key_arn                    = var.kms_key_arn
  state_machine_arns             = local.state_machine_arns
  deletion_protection_enabled    = var.config_tables_deletion_protection_enabled
  point_in_time_recovery_enabled = var.config_tables_point_in_time_recovery_enabled
  environment_variables          = merge(local.common_environment, { POWERTOOLS_SERVICE_NAME = "recorder" })
  create_dlq_alarm               = var.create_alarms
  alarm_actions                  = compact([try(module.alarms[0].topic_arn, null)])
  alarm_period_seconds           = var.alarm_period_seconds

  tags = var.tags
}
