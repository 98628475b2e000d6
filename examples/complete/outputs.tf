output "notification_stream_arn" {
  description = "Stream providers put CNM notifications on."
  value       = module.cnm_ingest.notification_stream_arn
}

output "response_stream_arn" {
  description = "Stream the CNM responses are written to."
  value       = module.cnm_ingest.response_stream_arn
}

output "stream_consumer_arn" {
  description = "Enhanced fan-out consumer of the message consumer."
  value       = module.cnm_ingest.stream_consumer_arn
}

output "fallback_topic_arn" {
  description = "SNS fallback topic."
  value       = module.cnm_ingest.fallback_topic_arn
}

output "failed_batch_topic_arn" {
  description = "SNS failed-batch topic (on-failure destination of the consumer mapping)."
  value       = module.cnm_ingest.failed_batch_topic_arn
}

output "dlq_url" {
  description = "Dead-letter queue (kinesisFailure)."
  value       = module.cnm_ingest.dlq_url
}

output "payload_bucket_name" {
  description = "Bucket of payloads too large for SNS/SQS."
  value       = module.cnm_ingest.payload_bucket_name
}

output "config_table_names" {
  description = "Rules, collections and providers tables."
  value = {
    rules       = module.cnm_ingest.rules_table_name
    collections = module.cnm_ingest.collections_table_name
    providers   = module.cnm_ingest.providers_table_name
  }
}

output "state_machine_arn" {
  description = "The CNM workflow state machine."
  value       = module.cnm_ingest.state_machine_arn
}

output "function_names" {
  description = "Every Lambda function of the pipeline."
  value       = module.cnm_ingest.function_names
}

output "alarm_topic_arn" {
  description = "Topic the alarms notify."
  value       = module.cnm_ingest.alarm_topic_arn
}

output "kms_key_arn" {
  description = "The customer managed key of the pipeline."
  value       = aws_kms_key.this.arn
}
