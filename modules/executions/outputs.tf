output "table_name" {
  description = "Name of the status store (executions and granules)."
  value       = aws_dynamodb_table.this.name
}

output "table_arn" {
  description = "ARN of the status store."
  value       = aws_dynamodb_table.this.arn
}
