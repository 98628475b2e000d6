variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-west-2"
}

variable "prefix" {
  description = "Name prefix of every resource."
  type        = string
  default     = "cnm-complete"
}

variable "provider_bucket_name" {
  description = "Bucket the providers stage their granules in (read by the workflow)."
  type        = string
  default     = "cnm-complete-provider-outbox"
}

variable "alarm_email_addresses" {
  description = "Email addresses receiving the pipeline's alarms."
  type        = list(string)
  default     = []
}
