################################################################################
# Version (and the packages' check: a plan with missing or mismatched packages stops here)
################################################################################

output "version" {
  description = "Version of this module (its VERSION file); the Lambda packages it deploys carry the same version in their manifest."
  value       = local.version

  precondition {
    condition     = local.manifest_found
    error_message = "cnm-ingest ${local.version} has no Lambda packages at ${local.manifest_path}: use the release archive cnm-ingest-${local.version}.zip as the module source (it carries them), or run `python build.py --out DIR` in a checkout of this version and set package_dir = DIR."
  }

  precondition {
    condition     = !local.manifest_found || local.manifest_version == local.version
    error_message = "cnm-ingest ${local.version} cannot deploy the Lambda packages at ${local.package_dir}: their manifest says version ${coalesce(local.manifest_version, "(none)")}${try(" (commit ${local.manifest.commit})", "")}, built from another version of the module; use the release archive cnm-ingest-${local.version}.zip, or rebuild the packages with `python build.py` from a checkout of ${local.version}."
  }
}

################################################################################
# Streams
################################################################################

output "notification_stream_arn" {
  description = "ARN of the notification stream providers write CNM messages to."
  value       = local.notification_stream_arn
}

output "notification_stream_name" {
  description = "Name of the notification stream."
  value       = local.notification_stream_name
}

output "response_stream_arn" {
  description = "ARN of the response stream the CNM responses are written to."
  value       = local.response_stream_arn
}

output "response_stream_name" {
  description = "Name of the response stream."
  value       = local.response_stream_name
}

output "stream_consumer_arn" {
  description = "ARN of the enhanced fan-out consumer of the notification stream (null unless enhanced_fan_out)."
  value       = module.consumer.stream_consumer_arn
}

################################################################################
# Topics, queue, buckets
################################################################################

output "fallback_topic_arn" {
  description = "ARN of the SNS fallback topic."
  value       = module.dead_letter.fallback_topic_arn
}

output "failed_batch_topic_arn" {
  description = "ARN of the failed-batch SNS topic, the consumer mapping's on-failure destination (null when on_failure_destination is \"s3\")."
  value       = module.dead_letter.failed_batch_topic_arn
}

output "failed_batch_bucket_arn" {
  description = "ARN of the on-failure bucket (null when on_failure_destination is \"sns\")."
  value       = module.dead_letter.failed_batch_bucket_arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue (<prefix>-kinesisFailure)."
  value       = module.dead_letter.dlq_url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue (<prefix>-kinesisFailure)."
  value       = module.dead_letter.dlq_arn
}

output "dlq_name" {
  description = "Name of the dead-letter queue."
  value       = module.dead_letter.dlq_name
}

output "payload_bucket_name" {
  description = "Name of the bucket holding payloads too large for SNS/SQS."
  value       = module.dead_letter.payload_bucket_name
}

output "payload_bucket_arn" {
  description = "ARN of the payload bucket."
  value       = module.dead_letter.payload_bucket_arn
}

################################################################################
# Configuration tables
################################################################################

output "rules_table_name" {
  description = "Name of the rules table."
  value       = module.config_tables.rules_table_name
}

output "collections_table_name" {
  description = "Name of the collections table."
  value       = module.config_tables.collections_table_name
}

output "providers_table_name" {
  description = "Name of the providers table."
  value       = module.config_tables.providers_table_name
}

output "config_table_arns" {
  description = "ARNs of the configuration tables, by kind (rules, collections, providers)."
  value       = module.config_tables.table_arns
}

################################################################################
# Workflow
################################################################################

output "state_machine_arn" {
  description = "ARN of the built-in CNM workflow state machine."
  value       = module.workflow.state_machine_arn
}

output "state_machine_name" {
  description = "Name of the built-in CNM workflow state machine."
  value       = module.workflow.state_machine_name
}

output "status_table_name" {
  description = "Name of the status store (executions and granules; the same table as executions_table_name)."
  value       = module.executions.table_name
}

output "status_table_arn" {
  description = "ARN of the status store (executions and granules)."
  value       = module.executions.table_arn
}

################################################################################
# Functions
################################################################################

output "function_names" {
  description = "Names of every Lambda function, by role (message_consumer, fallback_consumer, hydrate, inbound_logger, outbound_logger and the workflow tasks)."
  value       = local.function_names
}

output "function_arns" {
  description = "ARNs of every Lambda function, by role."
  value       = local.function_arns
}

output "message_consumer_function_name" {
  description = "Name of the message consumer function."
  value       = module.consumer.function_name
}

output "message_consumer_event_source_mapping_uuid" {
  description = "UUID of the notification stream event source mapping (to disable/enable ingestion)."
  value       = module.consumer.event_source_mapping_uuid
}

output "role_arns" {
  description = "ARNs of every IAM role the module creates, by function role (and state_machine): each has role_path and permissions_boundary_arn."
  value       = local.role_arns
}

output "lambda_security_group_id" {
  description = "ID of the functions' security group created from vpc_id (null when none is created)."
  value       = try(aws_security_group.lambda[0].id, null)
}

output "layer_arn" {
  description = "ARN of the dependency layer version (null when the packages were built without it)."
  value       = local.layer_arn
}

################################################################################
# Alarms
################################################################################

output "alarm_topic_arn" {
  description = "ARN of the alarm topic (created or given); null when none."
  value       = try(module.alarms[0].topic_arn, null)
}

output "alarm_arns" {
  description = "ARNs of the CloudWatch alarms, by name."
  value       = try(module.alarms[0].alarm_arns, {})
}

output "hydrate_idempotency_table_name" {
  description = "Name of the idempotency table hydrate uses (the shared one, as idempotency_table_name; null without hydrate)."
  value       = length(module.hydrate) > 0 ? aws_dynamodb_table.idempotency.name : null
}

################################################################################
# Recorder
################################################################################

output "executions_table_name" {
  description = "Name of the status store (executions and granules), which the cnm-ingest CLI reads; created with or without the recorder."
  value       = module.executions.table_name
}

output "recorder_queue_url" {
  description = "URL of the recorder's event buffer (null without the recorder)."
  value       = try(module.recorder[0].queue_url, null)
}

output "recorder_dlq_url" {
  description = "URL of the recorder's dead-letter queue (null without the recorder)."
  value       = try(module.recorder[0].dlq_url, null)
}

output "recorder_function_name" {
  description = "Name of the recorder function (null without the recorder)."
  value       = try(module.recorder[0].function_name, null)
}

output "prefix" {
  description = "The name prefix of every resource (the CLI's --prefix)."
  value       = var.prefix
}

output "idempotency_table_name" {
  description = "Name of the idempotency table shared by the message consumer, the fallback consumer and hydrate."
  value       = aws_dynamodb_table.idempotency.name
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard (null without create_dashboard)."
  value       = try(aws_cloudwatch_dashboard.this[0].dashboard_name, null)
}
