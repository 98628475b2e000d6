output "function_name" {
  description = "Name of the message consumer function."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the message consumer function."
  value       = module.function.function_arn
}

output "role_arn" {
  description = "ARN of the message consumer's execution role."
  value       = module.function.role_arn
}

output "log_group_name" {
  description = "Log group of the message consumer."
  value       = module.function.log_group_name
}

output "event_source_mapping_uuid" {
  description = "UUID of the event source mapping on the notification stream."
  value       = aws_lambda_event_source_mapping.this.uuid
}

output "on_failure_destination_arn" {
  description = "ARN of the on-failure destination of the mapping (failed-batch topic or bucket)."
  value       = local.on_failure_arn
}

output "failed_batch_topic_arn" {
  description = "ARN of the failed-batch SNS topic (null when on_failure_destination is \"s3\")."
  value       = try(aws_sns_topic.failed_batch[0].arn, null)
}

output "failed_batch_bucket_arn" {
  description = "ARN of the failed-batch bucket (null when on_failure_destination is \"sns\")."
  value       = local.use_sns ? null : local.on_failure_arn
}

output "stream_consumer_arn" {
  description = "ARN of the enhanced fan-out consumer (null when not enabled)."
  value       = try(aws_kinesis_stream_consumer.this[0].arn, null)
}

output "idempotency_table_name" {
  description = "Name of the idempotency table shared by the consumer, the fallback consumer and hydrate."
  value       = aws_dynamodb_table.idempotency.name
}

output "idempotency_table_arn" {
  description = "ARN of the idempotency table."
  value       = aws_dynamodb_table.idempotency.arn
}
