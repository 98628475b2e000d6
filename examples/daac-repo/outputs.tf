output "cnm_ingest_version" {
  description = "Version of the deployed cnm-ingest release."
  value       = module.cnm_ingest.version
}

output "notification_stream_arn" {
  description = "Stream the data providers write CNM notifications to."
  value       = module.cnm_ingest.notification_stream_arn
}

output "response_stream_arn" {
  description = "Stream the CNM responses are written to."
  value       = module.cnm_ingest.response_stream_arn
}

output "dlq_url" {
  description = "Dead-letter queue of records that could not be processed."
  value       = module.cnm_ingest.dlq_url
}
