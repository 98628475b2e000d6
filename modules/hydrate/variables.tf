variable "prefix" {
  description = "Name prefix: the function is <prefix>-hydrate."
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

variable "failed_batch_topic_arn" {
  description = "ARN of the failed-batch SNS topic (the notification stream mapping's on-failure destination) the function subscribes to."
  type        = string
}

variable "stream_arn" {
  description = "ARN of the notification stream the failed batches are re-read from."
  type        = string
}

variable "dlq_arn" {
  description = "ARN of the dead-letter queue (kinesisFailure)."
  type        = string
}

variable "dlq_url" {
  description = "URL of the dead-letter queue (DLQ_URL)."
  type        = string
}

variable "payload_bucket_arn" {
  description = "ARN of the bucket holding payloads too large for SQS."
  type        = string
}

variable "max_get_records_calls" {
  description = "Bound on GetRecords calls per failed batch (MAX_GET_RECORDS_CALLS)."
  type        = number
  default     = 100

  validation {
    condition     = var.max_get_records_calls >= 1 && var.max_get_records_calls <= 10000
    error_message = "max_get_records_calls must be between 1 and 10000."
  }
}

variable "maximum_retry_attempts" {
  description = "Lambda retries of a failed asynchronous invocation (0-2) before the event goes to the DLQ."
  type        = number
  default     = 2

  validation {
    condition     = var.maximum_retry_attempts >= 0 && var.maximum_retry_attempts <= 2 && floor(var.maximum_retry_attempts) == var.maximum_retry_attempts
    error_message = "maximum_retry_attempts must be 0, 1 or 2."
  }
}

variable "maximum_event_age_in_seconds" {
  description = "Age after which an unprocessed failed-batch event goes to the DLQ (60-21600)."
  type        = number
  default     = 21600

  validation {
    condition     = var.maximum_event_age_in_seconds >= 60 && var.maximum_event_age_in_seconds <= 21600
    error_message = "maximum_event_age_in_seconds must be between 60 and 21600."
  }
}

variable "payload_key_prefix" {
  description = "Key prefix under which the handlers store large payloads in the payload bucket (cnm_ingest.dlq writes failed-records/<sha256>)."
  type        = string
  default     = "failed-records/"
}

variable "get_records_limit" {
  description = "Optional Limit of each GetRecords call (GET_RECORDS_LIMIT, 1-10000); null for the Kinesis maximum."
  type        = number
  default     = null

  validation {
    condition     = var.get_records_limit == null || try(var.get_records_limit >= 1 && var.get_records_limit <= 10000, false)
    error_message = "get_records_limit must be null or between 1 and 10000."
  }
}

variable "idempotency_table_name" {
  description = "Name of the idempotency table shared with the message consumer (modules/consumer output): hydrate parks a record only if it was not parked before, and each failed batch's gap entry once."
  type        = string
}

variable "idempotency_table_arn" {
  description = "ARN of that idempotency table."
  type        = string
}

variable "config_table_arns" {
  description = "ARNs of the rules, collections and providers tables (read only), to compute a record's execution names."
  type        = list(string)
  default     = []
}

variable "state_machine_arns" {
  description = "ARNs of the state machines the rules start; hydrate may DescribeExecution their executions to skip records that already started."
  type        = list(string)
  default     = []
}
