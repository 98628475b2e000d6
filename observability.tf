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
  function_names = merge({ for k, f in local.deployed_functions : k => f.function_name }, module.workflow.function_names)
  function_arns  = merge({ for k, f in local.deployed_functions : k => f.function_arn }, module.workflow.function_arns)
  role_arns = merge(
    { for k, f in local.deployed_functions : k => f.role_arn },
    module.workflow.function_role_arns,
    { state_machine = module.workflow.state_machine_role_arn },
  )
}

module "alarms" {
  source = "./modules/alarms"
  count  = var.create_alarms ? 1 : 0

  prefix                    = var.prefix
  notification_stream_name  = local.notification_stream_name
  consumer_function_name    = module.consumer.function_name
  dlq_name                  = module.dead_letter.dlq_name
  function_names            = local.function_names
  iterator_age_threshold_ms = var.iterator_age_threshold_ms
  period_seconds            = var.alarm_period_seconds
  create_topic              = var.create_alarm_topic
  topic_arn                 = var.alarm_topic_arn
  topic_subscription_emails = var.alarm_email_addresses
  kms_key_arn               = var.kms_key_arn

  tags = var.tags
}
