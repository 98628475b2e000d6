output "topic_arn" {
  description = "ARN of the SNS fallback topic."
  value       = aws_sns_topic.fallback.arn
}

output "topic_name" {
  description = "Name of the SNS fallback topic."
  value       = aws_sns_topic.fallback.name
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue (kinesisFailure)."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue (kinesisFailure)."
  value       = aws_sqs_queue.dlq.id
}

output "dlq_name" {
  description = "Name of the dead-letter queue (kinesisFailure)."
  value       = aws_sqs_queue.dlq.name
}

output "function_name" {
  description = "Name of the fallback consumer function."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the fallback consumer function."
  value       = module.function.function_arn
}

output "role_arn" {
  description = "ARN of the fallback consumer's execution role."
  value       = module.function.role_arn
}
