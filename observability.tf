################################################################################
# Loggers (one per stream)
################################################################################

locals {
  loggers = {
    for key, logger in {
      inbound_logger  = { create = var.create_inbound_logger, stream_arn = local.notification_stream_arn }
      outbound_logger = { create = var.create_outbound_logger, stream_arn = local.response_stream_arn }
    } : key => logger if logger.create
  }
}

module "logger" {
  source   = "./modules/logger"
  for_each = local.loggers

  function = merge(local.functions[each.key], {
    environment_variables = merge(local.functions[each.key].environment_variables, {
      LOG_MAX_BYTES = tostring(var.log_max_bytes)
    })
  })

  stream_arn = each.value.stream_arn
}

################################################################################
# Alarms
################################################################################

locals {
  deployed_functions = merge(
    { message_consumer = module.consumer, fallback_consumer = module.fallback },
    { for h in module.hydrate : "hydrate" => h },
    module.logger,
  )
  # The recorder (below) notifies the alarm topic, so the alarms name its function from its object, not the module.
  alarmed_function_names = merge(
    { for k, f in local.deployed_functions : k => f.function_name },
    var.create_recorder ? { recorder = local.functions.recorder.name } : {},
    var.create_recorder && var.reconcile.enabled ? { reconcile = local.functions.reconcile.name } : {},
    module.workflow.function_names,
  )
}

module "alarms" {
  source = "./modules/alarms"
  count  = var.create_alarms ? 1 : 0

  prefix                    = var.prefix
  notification_stream_name  = local.notification_stream_name
  consumer_function_name    = module.consumer.function_name
  dlq_name                  = module.dead_letter.dlq_name
  function_names            = local.alarmed_function_names
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
# Recorder (the status store's writer from Step Functions status-change events)
################################################################################

module "recorder" {
  source = "./modules/recorder"
  count  = var.create_recorder ? 1 : 0

  function = local.functions.recorder

  prefix                       = var.prefix
  state_machine_arns           = local.state_machine_arns
  table_name                   = module.executions.table_name
  table_arn                    = module.executions.table_arn
  payload_bucket_name          = module.dead_letter.payload_bucket_name
  workflow_payload_objects_arn = local.workflow_payload_objects_arn
  create_dlq_alarm             = var.create_alarms
  alarm_actions                = compact([try(module.alarms[0].topic_arn, null)])
  alarm_period_seconds         = var.alarm_period_seconds
}

################################################################################
# Reconcile (scheduled: metrics Unanswered, Stuck, Lost per collection)
################################################################################

module "reconcile" {
  source = "./modules/reconcile"
  count  = var.create_recorder && var.reconcile.enabled ? 1 : 0

  function = local.functions.reconcile
  prefix   = var.prefix

  schedule_expression     = var.reconcile.schedule_expression
  window_seconds          = var.reconcile.window_seconds
  settle_seconds          = var.reconcile.settle_seconds
  stuck_after_seconds     = var.reconcile.stuck_after_seconds
  notification_stream_arn = local.notification_stream_arn
  response_stream_arn     = local.response_stream_arn
  executions_table_name   = module.executions.table_name
  executions_table_arn    = module.executions.table_arn
  idempotency_table_name  = aws_dynamodb_table.idempotency.name
  idempotency_table_arn   = aws_dynamodb_table.idempotency.arn
  shared_environment = {
    for k in ["RULES_TABLE", "COLLECTIONS_TABLE", "PROVIDERS_TABLE", "DLQ_URL", "PAYLOAD_BUCKET"] : k => local.routing_environment[k]
  }

  create_alarms     = var.create_alarms
  alarm_collections = var.reconcile.alarm_collections
  alarm_threshold   = var.reconcile.alarm_threshold
  alarm_actions     = compact([try(module.alarms[0].topic_arn, null)])
}

locals {
  all_functions = merge(
    local.deployed_functions,
    { for r in module.recorder : "recorder" => r },
    { for r in module.reconcile : "reconcile" => r },
  )
  function_names = merge({ for k, f in local.all_functions : k => f.function_name }, module.workflow.function_names)
  function_arns  = merge({ for k, f in local.all_functions : k => f.function_arn }, module.workflow.function_arns)
  role_arns = merge(
    { for k, f in local.all_functions : k => f.role_arn },
    module.workflow.function_role_arns,
    { state_machine = module.workflow.state_machine_role_arn },
  )
}
