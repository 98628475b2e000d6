output "function_name" {
  description = "Name of the fallback consumer function."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the fallback consumer function."
  value       = module.function.function_arn
}

output "role_arn" {
  description = "ARN of the fallback consumer's execution role (a DLQ writer)."
  value       = module.function.role_arn
}
