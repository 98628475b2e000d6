variable "prefix" {
  description = "Name prefix: topic <prefix>-fallback, queue <prefix>-kinesisFailure, function <prefix>-fallback-consumer."
  type        = string
}

variable "package" {
  description = "Deployment package of the function: zip path, its base64 SHA-256 (source_code_hash) and the handler string (from build/manifest.json)."
  type = object({
    filename         = string
    source_code_hash = string
    handler          = string
  })
}

variable "runtime" {
  description = "Lambda runtime."
  type        = string
  default     = "python3.12"
}

variable "layers" {
  description = "Lambda layer version ARNs (the dependency layer)."
  type        = list(string)
  default     = []
}

variable "environment_variables" {
  description = "Environment variables of the function (see docs/INTERFACES.md)."
  type        = map(string)
  default     = {}
}

variable "timeout" {
  description = "Function timeout in seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "memory_size" {
  description = "Function memory in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "reserved_concurrent_executions" {
  description = "Reserved concurrency of the function; null for unreserved."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrent_executions == null || try(var.reserved_concurrent_executions >= 0, false)
    error_message = "reserved_concurrent_executions must be null or >= 0."
  }
}

variable "tracing_enabled" {
  description = "Enable AWS X-Ray active tracing."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the function's CloudWatch log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key ARN used for this module's resources (log group, environment, topics, queues) and granted to the function; null uses AWS managed keys."
  type        = string
  default     = null
}

variable "additional_kms_key_arns" {
  description = "Further customer managed KMS key ARNs the function must use (e.g. of an existing stream encrypted with another key)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource of this module."
  type        = map(string)
  default     = {}
}

################################################################################
# What the fallback consumer reads and writes
################################################################################

variable "config_table_arns" {
  description = "ARNs of the rules, collections and providers tables (read only)."
  type        = list(string)
}

variable "state_machine_arns" {
  description = "ARNs of the state machines the rules start."
  type        = list(string)
}

variable "payload_bucket_arn" {
  description = "ARN of the bucket holding payloads too large for SNS/SQS (read and write)."
  type        = string
}

################################################################################
# Asynchronous invocation (from the fallback topic)
################################################################################

variable "maximum_retry_attempts" {
  description = "Lambda retries of a failed asynchronous invocation of the fallback consumer (0-2) before it goes to the DLQ."
  type        = number
  default     = 2

  validation {
    condition     = var.maximum_retry_attempts >= 0 && var.maximum_retry_attempts <= 2 && floor(var.maximum_retry_attempts) == var.maximum_retry_attempts
    error_message = "maximum_retry_attempts must be 0, 1 or 2."
  }
}

variable "maximum_event_age_in_seconds" {
  description = "Age after which an unprocessed fallback event goes to the DLQ (60-21600)."
  type        = number
  default     = 21600

  validation {
    condition     = var.maximum_event_age_in_seconds >= 60 && var.maximum_event_age_in_seconds <= 21600
    error_message = "maximum_event_age_in_seconds must be between 60 and 21600."
  }
}

################################################################################
# Topic and dead-letter queue
################################################################################

variable "topic_kms_master_key_id" {
  description = "KMS key of the fallback topic when kms_key_arn is null; the AWS managed key alias/aws/sns by default."
  type        = string
  default     = "alias/aws/sns"
}

variable "dlq_name" {
  description = "Name of the dead-letter queue; <prefix>-kinesisFailure when null."
  type        = string
  default     = null
}

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

  validation {
    condition     = length(var.dlq_redrive_source_queue_arns) <= 10
    error_message = "At most 10 source queues can be named in a redrive allow policy."
  }
}

variable "dlq_sender_role_arns" {
  description = "Further IAM role ARNs (e.g. the hydrate function's) the queue policy allows to send to the DLQ. The fallback consumer's role is always allowed."
  type        = list(string)
  default     = []
}

variable "dlq_sns_source_topic_arns" {
  description = "Further SNS topic ARNs whose subscriptions may redrive undeliverable messages to the DLQ. The fallback topic is always allowed."
  type        = list(string)
  default     = []
}

variable "payload_key_prefix" {
  description = "Key prefix under which the handlers store large payloads in the payload bucket (cnm_ingest.dlq writes failed-records/<sha256>)."
  type        = string
  default     = "failed-records/"
}

variable "workflow_payload_key_prefix" {
  description = "Key prefix under which large parts of workflow messages are stored in the payload bucket when an execution is started (cnm_ingest.message.KEY_PREFIX)."
  type        = string
  default     = "workflow/"
}

variable "idempotency_table_name" {
  description = "Name of the idempotency table (modules/consumer) shared with the message consumer and hydrate (IDEMPOTENCY_TABLE)."
  type        = string
  default     = null
}

variable "idempotency_table_arn" {
  description = "ARN of that idempotency table (read/write for Powertools idempotency)."
  type        = string
  default     = null
}

variable "response_stream_arn" {
  description = "ARN of the response stream, so a record that turns out bad on its retry is answered FAILURE (null: not answered)."
  type        = string
  default     = null
}
