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

variable "dlq_arn" {
  description = "ARN of the dead-letter queue (modules/dead_letter)."
  type        = string
}

variable "payload_objects_arn" {
  description = "ARN pattern of the payload objects the function writes (<payload bucket ARN>/<prefix>*)."
  type        = string
}

variable "idempotency_enabled" {
  description = "Create the idempotency table <function name>-idempotency (IDEMPOTENCY_TABLE) so a redelivered failed-batch notice is not parked twice."
  type        = bool
  default     = true
}
