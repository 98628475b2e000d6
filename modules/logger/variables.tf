variable "function" {
  description = "The function object the root module builds for this function (packages.tf), passed whole to modules/lambda_function, whose `function` variable declares its type."
  type        = any
}

variable "stream_arn" {
  description = "ARN of the Kinesis stream whose records are logged."
  type        = string
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
