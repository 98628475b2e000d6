output "notification_stream_arn" {
  description = "Stream providers put CNM notifications on."
  value       = module.cnm_ingest.notification_stream_arn
}

output "response_stream_arn" {
  description = "Stream the CNM responses are written to."
  value       = module.cnm_ingest.response_stream_arn
}

output "dlq_url" {
  description = "Dead-letter queue (kinesisFailure) of records that could not be processed."
  value       = module.cnm_ingest.dlq_url
}

output "state_machine_arn" {
  description = "The CNM workflow state machine."
  value       = module.cnm_ingest.state_machine_arn
}
