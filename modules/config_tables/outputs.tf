output "rules_table_name" {
  description = "Name of the rules table."
  value       = aws_dynamodb_table.this["rules"].name
}

output "rules_table_arn" {
  description = "ARN of the rules table."
  value       = aws_dynamodb_table.this["rules"].arn
}

output "collections_table_name" {
  description = "Name of the collections table."
  value       = aws_dynamodb_table.this["collections"].name
}

output "collections_table_arn" {
  description = "ARN of the collections table."
  value       = aws_dynamodb_table.this["collections"].arn
}

output "providers_table_name" {
  description = "Name of the providers table."
  value       = aws_dynamodb_table.this["providers"].name
}

output "providers_table_arn" {
  description = "ARN of the providers table."
  value       = aws_dynamodb_table.this["providers"].arn
}

output "table_arns" {
  description = "ARNs of the three tables, by kind (rules, collections, providers)."
  value       = { for k, t in aws_dynamodb_table.this : k => t.arn }
}
