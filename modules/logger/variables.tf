variable "function_name" {
  description = "Name of the logger function, e.g. <prefix>-inbound-logger."
  type        = string
}

variable "description" {
  description = "Description of the logger function."
  type        = string
  default     = "CNM ingest: logs the decoded records of a stream"
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
  default     = 60

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "memory_size" {
  description = "Function memory in MB."
  type        = number
  default     = 256

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

variable "stream_arn" {
  description = "ARN of the Kinesis stream whose records are logged."
  type        = string
}

variable "log_max_bytes" {
  description = "Cap on the logged size of one record (LOG_MAX_BYTES)."
  type        = number
  default     = 16384

  validation {
    condition     = var.log_max_bytes >= 256 && var.log_max_bytes <= 262144
    error_message = "log_max_bytes must be between 256 and 262144."
  }
}

variable "batch_size" {
  description = "Largest number of records per invocation (1-10000)."
  type        = number
  default     = 100

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be a whole number between 1 and 10000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "Seconds to gather records before invoking (0-300)."
  type        = number
  default     = 5

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300
    error_message = "maximum_batching_window_in_seconds must be between 0 and 300."
  }
}

variable "starting_position" {
  description = "Where a new mapping starts reading: TRIM_HORIZON or LATEST."
  type        = string
  default     = "TRIM_HORIZON"

  validation {
    condition     = contains(["TRIM_HORIZON", "LATEST"], var.starting_position)
    error_message = "starting_position must be TRIM_HORIZON or LATEST."
  }
}

variable "bisect_batch_on_function_error" {
  description = "Split a failing batch in two and retry the halves."
  type        = bool
  default     = true
}

variable "maximum_retry_attempts" {
  description = "Retries of a failing batch before it is skipped (0-10000; logging is best effort, so small and finite)."
  type        = number
  default     = 2

  validation {
    condition     = var.maximum_retry_attempts >= 0 && var.maximum_retry_attempts <= 10000 && floor(var.maximum_retry_attempts) == var.maximum_retry_attempts
    error_message = "maximum_retry_attempts must be a whole number between 0 and 10000 (no infinite retries for a logger)."
  }
}

variable "maximum_record_age_in_seconds" {
  description = "Records older than this are skipped (60-604800)."
  type        = number
  default     = 3600

  validation {
    condition     = var.maximum_record_age_in_seconds >= 60 && var.maximum_record_age_in_seconds <= 604800
    error_message = "maximum_record_age_in_seconds must be between 60 and 604800."
  }
}

variable "esm_enabled" {
  description = "Whether the event source mapping is enabled."
  type        = bool
  default     = true
}
