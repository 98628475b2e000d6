variable "function" {
  description = "The function object the root module builds for the recorder (packages.tf), passed to modules/lambda_function, whose `function` variable declares its type. Its kms_key_arn and tags also serve the queues; the buffer's visibility timeout is six times its timeout."
  type        = any
}

variable "prefix" {
  description = "Name prefix: <prefix>-recorder (function), <prefix>-execution-events (queue), <prefix>-execution-status (rule)."
  type        = string
}

variable "state_machine_arns" {
  description = "ARNs of the state machines whose execution status changes are recorded."
  type        = list(string)

  validation {
    condition     = length(var.state_machine_arns) > 0 && alltrue([for a in var.state_machine_arns : can(regex("^arn:[^:]+:states:[^:]*:[0-9]*:stateMachine:[A-Za-z0-9_-]+$", a))])
    error_message = "state_machine_arns must be a non-empty list of Step Functions state machine ARNs."
  }
}

variable "table_name" {
  description = "Name of the status store the recorder writes (modules/executions' table_name; EXECUTIONS_TABLE)."
  type        = string
}

variable "table_arn" {
  description = "ARN of the status store (modules/executions' table_arn): the recorder may get and update its EXECUTION# and GRANULE# items."
  type        = string

  validation {
    condition     = can(regex("^arn:[^:]+:dynamodb:[^:]*:[0-9]*:table/[A-Za-z0-9_.-]+$", var.table_arn))
    error_message = "table_arn must be a DynamoDB table ARN."
  }
}

variable "payload_bucket_name" {
  description = "Bucket holding the workflow message's large parts (PAYLOAD_BUCKET): the recorder reads an offloaded CNM (meta.cnm_ref) from it."
  type        = string
}

variable "workflow_payload_objects_arn" {
  description = "ARN pattern of the workflow message's large parts (<payload bucket ARN>/<cnm_ingest.message.KEY_PREFIX>*): the only objects the recorder may read."
  type        = string

  validation {
    condition     = can(regex("^arn:[^:]+:s3:::[a-z0-9.-]+/[^*]+\\*$", var.workflow_payload_objects_arn))
    error_message = "workflow_payload_objects_arn must be <bucket ARN>/<prefix>* (a prefix, not the whole bucket)."
  }
}

variable "batch_size" {
  description = "Events per recorder invocation (SQS event source mapping, 1-10000; above 10 needs a batching window)."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000
    error_message = "batch_size must be between 1 and 10000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "How long the event source mapping gathers events before invoking (0-300)."
  type        = number
  default     = 1

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300
    error_message = "maximum_batching_window_in_seconds must be between 0 and 300."
  }
}

variable "max_receive_count" {
  description = "Deliveries of an event before it is moved to the recorder's DLQ (1-1000)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "queue_message_retention_seconds" {
  description = "Retention of the event buffer (60-1209600 seconds)."
  type        = number
  default     = 345600

  validation {
    condition     = var.queue_message_retention_seconds >= 60 && var.queue_message_retention_seconds <= 1209600
    error_message = "queue_message_retention_seconds must be between 60 and 1209600."
  }
}

variable "dlq_message_retention_seconds" {
  description = "Retention of the recorder's DLQ (60-1209600 seconds, default 14 days)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be between 60 and 1209600."
  }
}

variable "create_dlq_alarm" {
  description = "Create the CloudWatch alarm <prefix>-recorder-dlq-not-empty (any message in the recorder's DLQ)."
  type        = bool
  default     = true
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified when the DLQ alarm fires and clears."
  type        = list(string)
  default     = []
}

variable "alarm_period_seconds" {
  description = "Period of the DLQ alarm's metric (a multiple of 60 seconds)."
  type        = number
  default     = 300

  validation {
    condition     = var.alarm_period_seconds >= 60 && var.alarm_period_seconds % 60 == 0
    error_message = "alarm_period_seconds must be a multiple of 60."
  }
}
