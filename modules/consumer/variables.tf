variable "function" {
  description = "The function object the root module builds for this function (packages.tf), passed whole to modules/lambda_function, whose `function` variable declares its type."
  type        = any
}

################################################################################
# What the consumer reads and writes (for its least-privilege role)
################################################################################

variable "stream_arn" {
  description = "ARN of the notification stream the event source mapping reads."
  type        = string
}

variable "rule_stream_arns" {
  description = "Further Kinesis streams that rules name (besides stream_arn): the function reads each through a mapping of its own, with the same settings. ARNs known at plan time."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "enhanced_fan_out" {
  description = "Read through a dedicated enhanced fan-out consumer of the stream (named like the function)."
  type        = bool
  default     = false
}

variable "config_table_arns" {
  description = "ARNs of the rules, collections and providers tables (read only)."
  type        = list(string)
}

variable "state_machine_arns" {
  description = "ARNs of the state machines the rules start."
  type        = list(string)
}

variable "fallback_topic_arn" {
  description = "ARN of the SNS fallback topic the consumer publishes unroutable records to (modules/dead_letter)."
  type        = string
}

variable "response_stream_arn" {
  description = "ARN of the response stream the consumer writes FAILURE responses to."
  type        = string
}

variable "workflow_payload_objects_arn" {
  description = "ARN pattern of the workflow message's large parts the consumer stores when it starts an execution (<payload bucket ARN>/<cnm_ingest.workflow.payload.KEY_PREFIX>*)."
  type        = string
}

variable "dlq_arn" {
  description = "ARN of the dead-letter queue (modules/dead_letter) the consumer parks bad records in."
  type        = string
}

variable "idempotency_table_arn" {
  description = "ARN of the idempotency table shared with the fallback consumer and hydrate (park / answer / fallback once per stream record)."
  type        = string
}

variable "payload_objects_arn" {
  description = "ARN pattern of the payload objects the handlers write (<payload bucket ARN>/<the prefix cnm_ingest.dlq writes under>*)."
  type        = string
}

################################################################################
# Event source mapping
################################################################################

variable "event_source_mapping" {
  description = "Settings of the notification stream mapping, declared, defaulted and validated by the root module's variables of the same names."
  type = object({
    batch_size                         = number
    maximum_batching_window_in_seconds = number
    starting_position                  = string
    starting_position_timestamp        = string
    parallelization_factor             = number
    bisect_batch_on_function_error     = bool
    maximum_retry_attempts             = number
    maximum_record_age_in_seconds      = number
    function_response_types            = list(string)
  })
}

variable "on_failure_destination" {
  description = "Kind of on_failure_destination_arn: \"sns\" (failed-batch topic) or \"s3\" (bucket), for the role's permission."
  type        = string
}

variable "on_failure_destination_arn" {
  description = "ARN of the on-failure destination of the mapping (modules/dead_letter's failed-batch topic or bucket)."
  type        = string
}

################################################################################
# Exactly once and throughput
################################################################################

variable "idempotency_ttl_seconds" {
  description = "How long an idempotency record (a record parked, answered or handed to the fallback topic) is kept: longer than the stream retention plus the hydrate delay (IDEMPOTENCY_TTL_SECONDS)."
  type        = number
  default     = 691200

  validation {
    condition     = var.idempotency_ttl_seconds >= 86400 && floor(var.idempotency_ttl_seconds) == var.idempotency_ttl_seconds
    error_message = "idempotency_ttl_seconds must be a whole number of at least 86400 (one day)."
  }
}

variable "start_concurrency" {
  description = "Largest number of concurrent StartExecution calls per invocation (START_CONCURRENCY), declared and validated by the root module's variable of the same name."
  type        = number
}

variable "start_rate_limit" {
  description = "Cap on StartExecution calls per second per consumer instance (START_RATE_LIMIT); 0 = no cap. Declared and validated by the root module's variable of the same name."
  type        = number
}

variable "start_rate_burst" {
  description = "Token bucket size for start_rate_limit (START_RATE_BURST); 0 = one second's worth. Declared and validated by the root module's variable of the same name."
  type        = number
}

variable "start_max_attempts" {
  description = "Tries of one StartExecution while throttled within an invocation before the record becomes a batch item failure (START_MAX_ATTEMPTS). Declared and validated by the root module's variable of the same name."
  type        = number
  default     = 10

  validation {
    condition     = var.start_max_attempts >= 1 && var.start_max_attempts <= 100 && floor(var.start_max_attempts) == var.start_max_attempts
    error_message = "start_max_attempts must be a whole number between 1 and 100."
  }
}
