variable "prefix" {
  description = "Name prefix (validated by the root module): queue <prefix>-kinesisFailure, topics <prefix>-fallback and <prefix>-failed-batch, buckets <prefix>-payloads-<account> and <prefix>-failed-batches-<account>."
  type        = string
}

variable "account_id" {
  description = "Account id in the default bucket names (validated by the root module); null reads it from STS."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "Customer managed KMS key ARN encrypting the queue, topics and buckets; null uses AWS managed keys (SQS-managed SSE, aws/sns, aws/s3)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource of this module."
  type        = map(string)
  default     = {}
}

variable "force_destroy_buckets" {
  description = "Let Terraform delete the buckets while they still hold objects (test stacks only)."
  type        = bool
  default     = false
}

################################################################################
# Dead-letter queue
################################################################################

variable "dlq_message_retention_seconds" {
  description = "How long the DLQ keeps a message (60-1209600); 14 days, the maximum, by default."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be between 60 and 1209600."
  }
}

variable "dlq_visibility_timeout_seconds" {
  description = "Visibility timeout of the DLQ (0-43200) for operators and redrive tools reading it."
  type        = number
  default     = 300

  validation {
    condition     = var.dlq_visibility_timeout_seconds >= 0 && var.dlq_visibility_timeout_seconds <= 43200
    error_message = "dlq_visibility_timeout_seconds must be between 0 and 43200."
  }
}

variable "dlq_redrive_source_queue_arns" {
  description = "Queues allowed to use the DLQ as their dead-letter queue (redrive allow policy byQueue); empty allows every queue of the account (allowAll)."
  type        = list(string)
  default     = []
}

################################################################################
# On-failure destination of the notification stream mapping
################################################################################

variable "on_failure_destination" {
  description = "\"sns\" creates the failed-batch topic; \"s3\" uses on_failure_s3_bucket_arn or creates the failed-batch bucket."
  type        = string
  default     = "sns"
}

variable "on_failure_s3_bucket_arn" {
  description = "Existing bucket ARN for on_failure_destination = \"s3\"; null creates <prefix>-failed-batches-<account id>."
  type        = string
  default     = null
}

variable "on_failure_s3_expiration_days" {
  description = "Expiry in days of the failed-batch objects in the bucket this module creates (null keeps them)."
  type        = number
  default     = 90

  validation {
    condition     = var.on_failure_s3_expiration_days == null || try(var.on_failure_s3_expiration_days >= 14 && var.on_failure_s3_expiration_days <= 36500, false)
    error_message = "on_failure_s3_expiration_days must be null or between 14 and 36500."
  }
}

################################################################################
# Payload bucket
################################################################################

variable "payload_bucket_name" {
  description = "Name of the payload bucket; <prefix>-payloads-<account id> when null."
  type        = string
  default     = null
}

variable "payload_bucket_versioning_enabled" {
  description = "Enable versioning on the payload bucket."
  type        = bool
  default     = true
}

variable "payload_bucket_expiration_days" {
  description = "Days after which large payloads expire (validated at the root: never before the DLQ messages pointing at them)."
  type        = number
  default     = 30
}
