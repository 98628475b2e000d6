################################################################################
# Workflow (Step Functions state machine and its task functions)
################################################################################

locals {
  # meta.buckets of the workflow message (Cumulus style); the workflow stages into these, the consumers pass them on.
  buckets = merge({ private = { name = var.staging_bucket_name, type = "private" } }, var.buckets)
}

module "workflow" {
  source = "./modules/workflow"

  prefix    = var.prefix
  functions = { for key in ["start_status", "translate_message", "sync_granule", "cnm_response", "stop_status"] : key => local.functions[key] }

  executions_table_name  = module.executions.table_name
  executions_table_arn   = module.executions.table_arn
  idempotency_table_name = aws_dynamodb_table.idempotency.name
  idempotency_table_arn  = aws_dynamodb_table.idempotency.arn

  response_stream_arn         = local.response_stream_arn
  response_stream_kms_key_arn = local.response_stream_kms_key_arn
  staging_bucket_name         = var.staging_bucket_name
  provider_bucket_arns        = var.provider_bucket_arns
  staging_temp_key_prefix     = local.staging_temp_key_prefix

  payload_bucket_name          = module.dead_letter.payload_bucket_name
  payload_bucket_kms_key_arn   = var.kms_key_arn
  workflow_payload_objects_arn = local.workflow_payload_objects_arn
  response_payload_objects_arn = "${module.dead_letter.payload_bucket_arn}/${local.response_key_prefix}*"
  workflow_offload_bytes       = var.workflow_offload_bytes
  dlq_url                      = module.dead_letter.dlq_url
  dlq_arn                      = module.dead_letter.dlq_arn
  dlq_kms_key_arn              = var.kms_key_arn

  kms_key_arn              = var.kms_key_arn
  log_retention_days       = var.log_retention_days
  state_machine_log_level  = var.state_machine_log_level
  tracing_enabled          = var.tracing_enabled
  permissions_boundary_arn = var.permissions_boundary_arn
  role_path                = var.role_path

  sync_retry_interval_seconds     = var.sync_retry_interval_seconds
  sync_retry_max_attempts         = var.sync_retry_max_attempts
  sync_concurrency                = var.sync_concurrency
  sync_deadline_margin_seconds    = var.sync_deadline_margin_seconds
  sync_max_invocations            = var.sync_max_invocations
  response_retry_interval_seconds = var.response_retry_interval_seconds
  response_retry_max_attempts     = var.response_retry_max_attempts
  contract_validation             = var.contract_validation

  extra_states             = var.extra_states
  extra_states_start_at    = var.extra_states_start_at
  extra_states_policy_json = var.extra_states_policy_json

  # CNM responses and sources (issue 13)
  response_destinations              = var.response_destinations
  response_destinations_kms_key_arns = var.response_destinations_kms_key_arns
  distribution_endpoint              = var.distribution_endpoint
  placement_bucket_names             = [for b in values(local.buckets) : b.name]
  provider_secret_arns               = [for p in var.providers_config : p.credentials_secret_arn if p.credentials_secret_arn != null]

  tags = var.tags
}

locals {
  # Rules without a workflow_arn start the built-in workflow.
  default_workflow_arn = module.workflow.state_machine_arn
  rules = [
    for r in var.rules : {
      name                  = r.name
      collection            = r.collection
      provider              = r.provider
      workflow_arn          = r.workflow_arn != null ? r.workflow_arn : local.default_workflow_arn
      state                 = r.state
      meta                  = r.meta
      stream_arn            = r.stream_arn != null ? r.stream_arn : local.notification_stream_arn
      execution_name_prefix = r.execution_name_prefix
    }
  ]
  # Streams that rules name besides the notification stream: one event source mapping each. Compared with
  # the variable, not the created stream's ARN, so the mapping keys are known at plan time.
  rule_stream_arns   = sort(distinct([for r in var.rules : r.stream_arn if r.stream_arn != null && r.stream_arn != var.existing_notification_stream_arn]))
  state_machine_arns = distinct(concat([local.default_workflow_arn], [for r in var.rules : r.workflow_arn if r.workflow_arn != null]))
}
