output "function_name" {
  description = "Name of the hydrate function."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the hydrate function."
  value       = module.function.function_arn
}

output "role_arn" {
  description = "ARN of the hydrate function's execution role."
  value       = module.function.role_arn
}

output "idempotency_table_name" {
  description = "Name of the idempotency table hydrate uses (the shared one of modules/consumer)."
  value       = var.idempotency_table_name
}
