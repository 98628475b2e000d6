output "queue_url" {
  description = "URL of the SQS buffer between EventBridge and the recorder."
  value       = aws_sqs_queue.buffer.id
}

output "queue_arn" {
  description = "ARN of the SQS buffer."
  value       = aws_sqs_queue.buffer.arn
}

output "dlq_url" {
  description = "URL of the recorder's dead-letter queue (events it could not record, and events EventBridge could not deliver)."
  value       = aws_sqs_queue.dlq.id
}

output "dlq_arn" {
  description = "ARN of the recorder's dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "rule_name" {
  description = "Name of the EventBridge rule on execution status changes."
  value       = aws_cloudwatch_event_rule.status_change.name
}

output "function_name" {
  description = "Name of the recorder function."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the recorder function."
  value       = module.function.function_arn
}

output "role_arn" {
  description = "ARN of the recorder function's role."
  value       = module.function.role_arn
}

output "dlq_name" {
  description = "Name of the recorder's dead-letter queue."
  value       = aws_sqs_queue.dlq.name
}

output "dlq_alarm_arn" {
  description = "ARN of the recorder DLQ alarm (null when not created)."
  value       = try(aws_cloudwatch_metric_alarm.dlq[0].arn, null)
}
