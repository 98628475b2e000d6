variable "function" {
  description = "The function object the root module builds for the reconcile function (packages.tf), passed to modules/lambda_function, whose `function` variable declares its type. Its POWERTOOLS_METRICS_NAMESPACE is the metrics' namespace; its tags also serve the rule and the alarms."
  type        = any
}

variable "prefix" {
  description = "Name prefix: <prefix>-reconcile (function and schedule rule), <prefix>-reconcile-<metric>[-<collection>] (alarms)."
  type        = string
}

variable "schedule_expression" {
  description = "When the reconciliation runs: an EventBridge rate() or cron() expression."
  type        = string
  default     = "rate(1 hour)"

  validation {
    condition     = can(regex("^(rate\\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\\)|cron\\(.+\\))$", var.schedule_expression))
    error_message = "schedule_expression must be rate(<n> minutes|hours|days) or cron(...)."
  }
}

variable "window_seconds" {
  description = "Length of the trailing window each run reconciles (300-604800 seconds); keep it within the notification stream's retention, or the older part is reported as a trimmed range."
  type        = number
  default     = 86400

  validation {
    condition     = var.window_seconds >= 300 && var.window_seconds <= 604800 && floor(var.window_seconds) == var.window_seconds
    error_message = "window_seconds must be a whole number between 300 and 604800."
  }
}

variable "settle_seconds" {
  description = "The window ends this long before the run (0-3600 seconds): the newest records are still being started."
  type        = number
  default     = 900

  validation {
    condition     = var.settle_seconds >= 0 && var.settle_seconds <= 3600 && floor(var.settle_seconds) == var.settle_seconds
    error_message = "settle_seconds must be a whole number between 0 and 3600."
  }
}

variable "stuck_after_seconds" {
  description = "An execution running longer than this counts as Stuck (60-31536000 seconds; the workflow's timeout)."
  type        = number
  default     = 7200

  validation {
    condition     = var.stuck_after_seconds >= 60 && var.stuck_after_seconds <= 31536000 && floor(var.stuck_after_seconds) == var.stuck_after_seconds
    error_message = "stuck_after_seconds must be a whole number between 60 and 31536000."
  }
}

variable "notification_stream_arn" {
  description = "ARN of the notification stream (read by time)."
  type        = string
}

variable "response_stream_arn" {
  description = "ARN of the response stream (the answers)."
  type        = string
}

variable "executions_table_name" {
  description = "Name of the recorder's executions table (modules/recorder)."
  type        = string
}

variable "executions_table_arn" {
  description = "ARN of the recorder's executions table; the function queries its by_status index only."
  type        = string
}

variable "idempotency_table_name" {
  description = "Name of the consumers' idempotency table (the park markers)."
  type        = string
}

variable "idempotency_table_arn" {
  description = "ARN of the consumers' idempotency table (GetItem only)."
  type        = string
}

variable "create_alarms" {
  description = "Create the alarms on Unanswered, Stuck and Lost."
  type        = bool
  default     = true
}

variable "alarm_collections" {
  description = "Collection ids (name__version, as the metrics' collection dimension has them) that get alarms of their own, besides the alarms over every collection."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.alarm_collections : length(c) >= 1 && length(c) <= 255])
    error_message = "alarm_collections entries must be 1-255 characters."
  }
}

variable "alarm_threshold" {
  description = "An alarm fires when a metric exceeds this many records (0: any)."
  type        = number
  default     = 0

  validation {
    condition     = var.alarm_threshold >= 0
    error_message = "alarm_threshold must not be negative."
  }
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm fires or recovers (the alarm topic)."
  type        = list(string)
  default     = []
}

variable "alarm_period_seconds" {
  description = "Period of the alarms' metrics (a multiple of 60 seconds); at least the schedule's interval, so a run's figures are seen."
  type        = number
  default     = 3600

  validation {
    condition     = var.alarm_period_seconds >= 60 && var.alarm_period_seconds % 60 == 0
    error_message = "alarm_period_seconds must be a multiple of 60."
  }
}

variable "shared_environment" {
  description = "Environment the code the reconcile function imports reads besides its own (cnm_ingest.reconcile shares the consumer's and CnmResponse's modules: the config tables, the DLQ and the payload bucket, by name). No IAM comes with it: the scheduled run only reads the streams, the status store and the markers."
  type        = map(string)
  default     = {}
}
