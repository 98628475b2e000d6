variable "function" {
  description = "The function object the root module builds for this function (packages.tf), passed whole to modules/lambda_function, whose `function` variable declares its type."
  type        = any
}

################################################################################
# What the fallback consumer reads and writes
################################################################################

variable "topic_arn" {
  description = "ARN of the SNS fallback topic the function subscribes to (modules/dead_letter)."
  type        = string
}

variable "dlq_arn" {
  description = "ARN of the dead-letter queue (modules/dead_letter): the function's on-failure destination and the subscription's redrive target."
  type        = string
}

variable "config_table_arns" {
  description = "ARNs of the rules, collections and providers tables (read only)."
  type        = list(string)
}

variable "state_machine_arns" {
  description = "ARNs of the state machines the rules start."
  type        = list(string)
}

variable "workflow_payload_objects_arn" {
  description = "ARN pattern of the workflow message's large parts the function stores when it starts an execution (<payload bucket ARN>/<cnm_ingest.workflow.payload.KEY_PREFIX>*)."
  type        = string
}

variable "idempotency_table_arn" {
  description = "ARN of the idempotency table shared with the message consumer and hydrate (IDEMPOTENCY_TABLE)."
  type        = string
}

variable "response_stream_arn" {
  description = "ARN of the response stream, so a record that turns out bad on its retry is answered FAILURE."
  type        = string
}

variable "payload_objects_arn" {
  description = "ARN pattern of the payload objects the handlers read and write (<payload bucket ARN>/<prefix>*)."
  type        = string
}

################################################################################
# Asynchronous invocation (from the fallback topic)
################################################################################

variable "maximum_retry_attempts" {
  description = "Lambda retries of a failed asynchronous invocation (0-2, validated by the root's fallback_maximum_retry_attempts) before the event goes to the DLQ."
  type        = number
}

variable "maximum_event_age_in_seconds" {
  description = "Age after which an unprocessed fallback event goes to the DLQ (60-21600, validated by the root's fallback_maximum_event_age_in_seconds)."
  type        = number
}
