variable "prefix" {
  description = "Name prefix of the alarms and of the alarm topic (<prefix>-alarms)."
  type        = string
}

variable "notification_stream_name" {
  description = "Name of the notification stream (GetRecords.IteratorAgeMilliseconds alarm)."
  type        = string
}

variable "consumer_function_name" {
  description = "Name of the message consumer function (Lambda IteratorAge alarm, which also covers enhanced fan-out). null for none."
  type        = string
  default     = null
}

variable "dlq_name" {
  description = "Name of the dead-letter queue (alarm as soon as a message is visible)."
  type        = string
}

variable "function_names" {
  description = "Functions to alarm on Errors, by a static key (e.g. message_consumer => <prefix>-message-consumer)."
  type        = map(string)
  default     = {}
}

variable "state_machine_arns" {
  description = "State machines to alarm on ExecutionsFailed, ExecutionsTimedOut and ExecutionsAborted (> 0 in a period), by a static key (e.g. cnm_workflow => its ARN)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for arn in values(var.state_machine_arns) : can(regex("^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:.+$", arn))])
    error_message = "state_machine_arns values must be Step Functions state machine ARNs."
  }
}

variable "iterator_age_threshold_ms" {
  description = "(Validated by the root module.) Alarm when the oldest unread record of the notification stream is older than this (milliseconds)."
  type        = number
  default     = 600000
}

variable "function_errors_threshold" {
  description = "Alarm when a function reports more than this many errors in one period."
  type        = number
  default     = 0

  validation {
    condition     = var.function_errors_threshold >= 0
    error_message = "function_errors_threshold must be >= 0."
  }
}

variable "period_seconds" {
  description = "(Validated by the root module.) Period of every alarm's metric, in seconds (60 or a multiple of 60)."
  type        = number
  default     = 300
}

variable "evaluation_periods" {
  description = "Periods evaluated before an alarm changes state."
  type        = number
  default     = 1

  validation {
    condition     = var.evaluation_periods >= 1 && var.evaluation_periods <= 100
    error_message = "evaluation_periods must be between 1 and 100."
  }
}

variable "create_topic" {
  description = "Create the SNS topic <prefix>-alarms as the alarm action."
  type        = bool
  default     = false
}

variable "topic_arn" {
  description = "Existing SNS topic ARN for alarm actions (used when create_topic is false); null for no actions."
  type        = string
  default     = null
}

variable "topic_subscription_emails" {
  description = "Email addresses subscribed to the created alarm topic (each must confirm)."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "Customer managed KMS key ARN for the created alarm topic. CloudWatch cannot publish to a topic encrypted with the AWS managed key aws/sns, so without a customer key (whose policy must allow cloudwatch.amazonaws.com) the topic is created without SSE."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource of this module."
  type        = map(string)
  default     = {}
}
