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
  value       = aws_lambda_event_source_mapping.this["notification"].uuid
}

output "event_source_mapping_uuids" {
  description = "UUID of each event source mapping, by stream (\"notification\", then the ARN of each stream rules name)."
  value       = { for k, m in aws_lambda_event_source_mapping.this : k => m.uuid }
}

output "stream_consumer_arn" {
  description = "ARN of the enhanced fan-out consumer on the notification stream (null when not enabled)."
  value       = try(aws_kinesis_stream_consumer.this["notification"].arn, null)
}
