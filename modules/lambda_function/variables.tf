variable "function_name" {
  description = "Name of the Lambda function (also names its role and log group)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.function_name))
    error_message = "function_name must be 1-64 characters of letters, digits, '-' and '_'."
  }
}

variable "description" {
  description = "Description of the Lambda function."
  type        = string
  default     = ""
}

variable "filename" {
  description = "Path to the deployment package (zip) on the machine running Terraform."
  type        = string
}

variable "source_code_hash" {
  description = "Base64-encoded SHA-256 of the deployment package (the manifest's base64sha256); a change redeploys the code."
  type        = string
}

variable "handler" {
  description = "Handler string, e.g. \"message_consumer.handler\"."
  type        = string
}

variable "runtime" {
  description = "Lambda runtime."
  type        = string
  default     = "python3.12"
}

variable "architectures" {
  description = "Instruction set architecture; the packages are built for x86_64."
  type        = list(string)
  default     = ["x86_64"]

  validation {
    condition     = length(var.architectures) == 1 && alltrue([for a in var.architectures : contains(["x86_64", "arm64"], a)])
    error_message = "architectures must be exactly one of \"x86_64\" or \"arm64\"."
  }
}

variable "layers" {
  description = "Lambda layer version ARNs to attach (at most 5)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.layers) <= 5
    error_message = "A Lambda function can use at most 5 layers."
  }
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
  description = "Memory in MB."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "reserved_concurrent_executions" {
  description = "Reserved concurrency; null leaves the function unreserved, 0 disables invocations."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrent_executions == null || try(var.reserved_concurrent_executions >= 0, false)
    error_message = "reserved_concurrent_executions must be null or >= 0."
  }
}

variable "environment_variables" {
  description = "Environment variables of the function."
  type        = map(string)
  default     = {}
}

variable "policy_json" {
  description = "IAM policy document (JSON) with the function's own permissions, attached inline to its role next to the log, tracing, KMS and destination permissions this module adds. null for none."
  type        = string
  default     = null
}

variable "tracing_enabled" {
  description = "Enable AWS X-Ray active tracing (adds the X-Ray write permissions)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the function's CloudWatch log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key ARN encrypting the log group and the environment variables (the role may decrypt with it). null uses AWS managed keys."
  type        = string
  default     = null
}

variable "additional_kms_key_arns" {
  description = "Further KMS key ARNs the function may use to encrypt and decrypt data (customer keys of streams, topics, queues, tables it touches)."
  type        = list(string)
  default     = []
}

variable "dead_letter_target_arn" {
  description = "SQS queue or SNS topic ARN for the function's (legacy) dead-letter config on asynchronous invocations; null for none. Prefer async_on_failure_destination_arn."
  type        = string
  default     = null
}

variable "create_async_event_config" {
  description = "Create an aws_lambda_function_event_invoke_config for asynchronous invocations (retries, event age, destinations)."
  type        = bool
  default     = false
}

variable "async_maximum_retry_attempts" {
  description = "Retries of a failed asynchronous invocation (0-2)."
  type        = number
  default     = 2

  validation {
    condition     = var.async_maximum_retry_attempts >= 0 && var.async_maximum_retry_attempts <= 2
    error_message = "async_maximum_retry_attempts must be between 0 and 2."
  }
}

variable "async_maximum_event_age_in_seconds" {
  description = "Maximum age of an asynchronous event before it is sent to the on-failure destination (60-21600)."
  type        = number
  default     = 21600

  validation {
    condition     = var.async_maximum_event_age_in_seconds >= 60 && var.async_maximum_event_age_in_seconds <= 21600
    error_message = "async_maximum_event_age_in_seconds must be between 60 and 21600."
  }
}

variable "async_on_failure_destination_arn" {
  description = "SQS queue, SNS topic, Lambda function or EventBridge bus ARN receiving failed asynchronous invocations; null for none. An SQS queue or SNS topic gets the matching send permission on the role."
  type        = string
  default     = null
}

variable "async_on_failure_destination_type" {
  description = "Kind of async_on_failure_destination_arn, for the role's permission: \"sqs\" or \"sns\" (ignored when no destination)."
  type        = string
  default     = "sqs"

  validation {
    condition     = contains(["sqs", "sns"], var.async_on_failure_destination_type)
    error_message = "async_on_failure_destination_type must be \"sqs\" or \"sns\"."
  }
}

variable "tags" {
  description = "Tags for every resource of this module."
  type        = map(string)
  default     = {}
}
