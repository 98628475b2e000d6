################################################################################
# Packages (build.py -> manifest.json, see docs/INTERFACES.md)
################################################################################

locals {
  # The module's version: VERSION, the one place it lives (build.py stamps it into the manifest too).
  version     = trimspace(file("${path.module}/VERSION"))
  package_dir = var.package_dir != null ? var.package_dir : "${path.module}/build"

  # A module from git has no packages (the release archive carries them under build/). Then the plan
  # stops at the version output's precondition (outputs.tf), which says what to do; the stand-in
  # below only keeps every other expression from failing first with a raw file() error.
  manifest_path  = "${local.package_dir}/manifest.json"
  manifest_found = fileexists(local.manifest_path)
  manifest = try(jsondecode(file(local.manifest_path)), {
    version   = null
    commit    = null
    runtime   = "provided.al2023" # any runtime the provider accepts: the plan stops at the precondition
    constants = { payload_key_prefix = "", response_key_prefix = "", workflow_payload_key_prefix = "", staging_temp_key_prefix = "missing/" }
    layers    = {}
    functions = { for p in distinct([for d in values(local.lambda_function_defaults) : d.package]) : p => { filename = "missing.zip", base64sha256 = "missing", handler = "missing.handler" } }
  })
  manifest_version = try(local.manifest.version, null)

  packages = {
    for name, fn in local.manifest.functions : name => {
      filename         = "${local.package_dir}/${fn.filename}"
      source_code_hash = fn.base64sha256
      handler          = fn.handler
    }
  }
  has_layer = contains(keys(local.manifest.layers), "deps")
  layer_arn = local.has_layer ? aws_lambda_layer_version.deps[0].arn : null

  # Values the Python code fixes, which the IAM policies must match: from the manifest, never restated here.
  payload_key_prefix          = local.manifest.constants.payload_key_prefix
  response_key_prefix         = local.manifest.constants.response_key_prefix
  workflow_payload_key_prefix = local.manifest.constants.workflow_payload_key_prefix
  staging_temp_key_prefix     = local.manifest.constants.staging_temp_key_prefix
}

resource "aws_lambda_layer_version" "deps" {
  count = local.has_layer ? 1 : 0

  layer_name          = "${var.prefix}-deps"
  description         = "cnm-ingest runtime dependencies"
  filename            = "${local.package_dir}/${local.manifest.layers.deps.filename}"
  source_code_hash    = local.manifest.layers.deps.base64sha256
  compatible_runtimes = [local.manifest.runtime]
}

################################################################################
# Function objects: one per Lambda function, the only place a Lambda setting
# is given a value. Built-in defaults per function, overridden by
# var.lambda_function_settings["defaults"], then var.lambda_function_settings[<function>]
# (the terraform-aws-lambda wrappers pattern). Every module receives its
# function's object whole (modules/lambda_function describes it); the call
# site adds the environment that names other resources.
################################################################################

locals {
  lambda_function_defaults = {
    message_consumer  = { package = "message_consumer", timeout = 300, memory_size = 512, kms_keys = concat(local.notification_stream_kms_keys, local.response_stream_kms_keys), description = "CNM ingest: consumes the notification stream and starts workflows" }
    fallback_consumer = { package = "fallback_consumer", timeout = 300, memory_size = 512, kms_keys = [], description = "CNM ingest: retries records the message consumer could not process, parks the rest in the DLQ" }
    hydrate           = { package = "hydrate", timeout = 300, memory_size = 512, kms_keys = local.notification_stream_kms_keys, description = "CNM ingest: re-reads failed notification batches into the DLQ" }
    inbound_logger    = { package = "logger", timeout = 60, memory_size = 256, kms_keys = local.notification_stream_kms_keys, description = "CNM ingest: logs the notification stream" }
    outbound_logger   = { package = "logger", timeout = 60, memory_size = 256, kms_keys = local.response_stream_kms_keys, description = "CNM ingest: logs the response stream" }
    start_status      = { package = "start_status", timeout = 60, memory_size = 256, kms_keys = [], description = "CNM workflow: record the execution as RUNNING" }
    translate_message = { package = "translate_message", timeout = 60, memory_size = 256, kms_keys = [], description = "CNM workflow: CNM notification to granule" }
    sync_granule      = { package = "sync_granule", timeout = 900, memory_size = 1024, kms_keys = [], description = "CNM workflow: stage granule files with checksum verification" }
    cnm_response      = { package = "cnm_response", timeout = 60, memory_size = 256, kms_keys = [], description = "CNM workflow: write the CNM response" }
    stop_status       = { package = "stop_status", timeout = 60, memory_size = 256, kms_keys = [], description = "CNM workflow: record the execution as COMPLETED or FAILED" }
    recorder          = { package = "recorder", timeout = 60, memory_size = 256, kms_keys = [], description = "CNM ingest: records every workflow execution status change" }
    reconcile         = { package = "reconcile", timeout = 300, memory_size = 512, kms_keys = concat(local.notification_stream_kms_keys, local.response_stream_kms_keys), description = "CNM ingest: reconciles a trailing window (metrics Unanswered, Stuck, Lost)" }
  }

  lambda_settings = var.lambda_function_settings

  functions = {
    for key, d in local.lambda_function_defaults : key => {
      name        = "${var.prefix}-${replace(key, "_", "-")}"
      description = d.description
      package     = local.packages[d.package]
      runtime     = local.manifest.runtime
      layers      = local.has_layer ? [aws_lambda_layer_version.deps[0].arn] : []

      timeout     = coalesce(try(local.lambda_settings[key].timeout, null), try(local.lambda_settings.defaults.timeout, null), d.timeout)
      memory_size = coalesce(try(local.lambda_settings[key].memory_size, null), try(local.lambda_settings.defaults.memory_size, null), d.memory_size)
      reserved_concurrent_executions = try(coalesce(
        try(local.lambda_settings[key].reserved_concurrent_executions, null),
        try(local.lambda_settings.defaults.reserved_concurrent_executions, null),
      ), null)

      environment_variables = {
        POWERTOOLS_LOG_LEVEL         = var.log_level
        POWERTOOLS_METRICS_NAMESPACE = var.prefix
        POWERTOOLS_SERVICE_NAME      = key
      }

      log_retention_days      = var.log_retention_days
      kms_key_arn             = var.kms_key_arn
      additional_kms_key_arns = d.kms_keys
      tracing_enabled         = var.tracing_enabled

      vpc_subnet_ids           = var.lambda_subnet_ids
      vpc_security_group_ids   = local.lambda_security_group_ids
      permissions_boundary_arn = var.permissions_boundary_arn
      role_path                = var.role_path

      tags = var.tags
    }
  }
}
