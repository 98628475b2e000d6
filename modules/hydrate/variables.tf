variable "function" {
  description = "The function object the root module builds for this function (packages.tf), passed whole to modules/lambda_function, whose `function` variable declares its type."
  type        = any
}

variable "failed_batch_topic_arn" {
  description = "ARN of the failed-batch SNS topic (modules/dead_letter; the notification stream mapping's on-failure destination) the function subscribes to."
  type        = string
}

variable "stream_arn" {
  description = "ARN of the notification stream the failed batches are re-read from."
  type        = string
}

variable "rule_stream_arns" {
  description = "Further Kinesis streams that rules name, whose failed batches are re-read too."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "dlq_arn" {
  description = "ARN of the dead-letter queue (modules/dead_letter)."
  type        = string
}

variable "payload_objects_arn" {
  description = "ARN pattern of the payload objects the function writes (<payload bucket ARN>/<prefix>*)."
  type        = string
}

variable "idempotency_table_arn" {
  description = "ARN of the idempotency table shared with the message consumer (IDEMPOTENCY_TABLE): hydrate parks a record only if it was not parked before, and each failed batch's gap entry once."
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
