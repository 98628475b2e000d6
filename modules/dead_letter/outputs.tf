output "dlq_arn" {
  description = "ARN of the dead-letter queue (<prefix>-kinesisFailure)."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue (DLQ_URL)."
  value       = aws_sqs_queue.dlq.id
}

output "dlq_name" {
  description = "Name of the dead-letter queue."
  value       = aws_sqs_queue.dlq.name
}

output "dlq_sns_source_topic_arns" {
  description = "Topics whose subscriptions redrive undeliverable messages to the DLQ (fallback and failed-batch): the queue policy composed at the root lets SNS send for them."
  value       = local.dlq_sns_redrives
}

output "fallback_topic_arn" {
  description = "ARN of the SNS fallback topic."
  value       = aws_sns_topic.fallback.arn
}

output "failed_batch_topic_arn" {
  description = "ARN of the failed-batch SNS topic (null when on_failure_destination is \"s3\")."
  value       = try(aws_sns_topic.failed_batch[0].arn, null)
}

output "failed_batch_bucket_arn" {
  description = "ARN of the failed-batch bucket (null when on_failure_destination is \"sns\")."
  value       = local.use_sns ? null : local.on_failure_arn
}

output "on_failure_destination_arn" {
  description = "ARN of the notification stream mapping's on-failure destination (failed-batch topic or bucket)."
  value       = local.on_failure_arn
}

output "payload_bucket_name" {
  description = "Name of the payload bucket."
  value       = module.payload_bucket.bucket_id
}

output "payload_bucket_arn" {
  description = "ARN of the payload bucket."
  value       = module.payload_bucket.bucket_arn
}
