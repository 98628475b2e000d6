variable "function" {
  description = "The function, as the root module builds it for every function (one object, declared and validated once at the root; see the root README \"Extending the Terraform\"): name (also names the role and log group), description, package {filename, source_code_hash, handler} from build/manifest.json, runtime, layers, timeout, memory_size, reserved_concurrent_executions (null = unreserved), environment_variables, log_retention_days, kms_key_arn (null = AWS managed keys), additional_kms_key_arns, tracing_enabled, vpc_subnet_ids and vpc_security_group_ids (empty = not in a VPC), permissions_boundary_arn (null = none), role_path and tags."
  type = object({
    name                           = string
    description                    = string
    package                        = object({ filename = string, source_code_hash = string, handler = string })
    runtime                        = string
    layers                         = list(string)
    timeout                        = number
    memory_size                    = number
    reserved_concurrent_executions = number
    environment_variables          = map(string)
    log_retention_days             = number
    kms_key_arn                    = string
    additional_kms_key_arns        = list(string)
    tracing_enabled                = bool
    vpc_subnet_ids                 = list(string)
    vpc_security_group_ids         = list(string)
    permissions_boundary_arn       = string
    role_path                      = string
    tags                           = map(string)
  })
}

variable "policy_json" {
  description = "IAM policy document (JSON) with the function's own permissions, attached inline to its role next to the log, tracing, KMS, VPC and destination permissions this module adds. null for none."
  type        = string
  default     = null
}

variable "create_async_event_config" {
  description = "Create an aws_lambda_function_event_invoke_config for asynchronous invocations (retries, event age, destinations)."
  type        = bool
  default     = false
}

variable "async_maximum_retry_attempts" {
  description = "Retries of a failed asynchronous invocation (0-2; the root module validates what it exposes)."
  type        = number
  default     = 2
}

variable "async_maximum_event_age_in_seconds" {
  description = "Maximum age of an asynchronous event before it is sent to the on-failure destination (60-21600)."
  type        = number
  default     = 21600
}

variable "async_on_failure_destination_arn" {
  description = "SQS queue ARN receiving failed asynchronous invocations (the role gets sqs:SendMessage on it); null for none."
  type        = string
  default     = null
}
