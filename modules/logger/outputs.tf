output "function_name" {
  description = "Name of the logger function."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the logger function."
  value       = module.function.function_arn
}

output "role_arn" {
  description = "ARN of the logger's execution role."
  value       = module.function.role_arn
}

output "event_source_mapping_uuid" {
  description = "UUID of the logger's event source mapping."
  value       = aws_lambda_event_source_mapping.this.uuid
}
