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
