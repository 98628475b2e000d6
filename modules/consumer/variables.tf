variable "prefix" {
  description = "Name prefix of every resource of this module."
  type        = string
}

variable "function_name" {
  description = "Name of the message consumer function; <prefix>-message-consumer when null."
  type        = string
  default     = null
}

variable "package" {
  description = "Deployment package of the function: zip path, its base64 SHA-256 (source_code_hash) and the handler string (from build/manifest.json)."
  type = object({
    filename         = string
    source_code_hash = string
    handler          = string
  })
}

variable "runtime" {
  description = "Lambda runtime."
  type        = string
  default     = "python3.12"
}

variable "layers" {
  description = "Lambda layer version ARNs (the dependency layer)."
  type        = list(string)
  default     = []
}

variable "environment_variables" {
  description = "Environment variables of the function (see docs/INTERFACES.md)."
  type        = map(string)
  default     = {}
}

variable "timeout" {
  description = "Function timeout in seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "memory_size" {
  description = "Function memory in MB."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "reserved_concurrent_executions" {
  description = "Reserved concurrency of the function; null for unreserved."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrent_executions == null || try(var.reserved_concurrent_executions >= 0, false)
    error_message = "reserved_concurrent_executions must be null or >= 0."
  }
}

variable "tracing_enabled" {
  description = "Enable AWS X-Ray active tracing."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the function's CloudWatch log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key ARN used for this module's resources (log group, environment, topics, queues) and granted to the function; null uses AWS managed keys."
  type        = string
  default     = null
}

variable "additional_kms_key_arns" {
  description = "Further customer managed KMS key ARNs the function must use (e.g. of an existing stream encrypted with another key)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource of this module."
  type        = map(string)
  default     = {}
}

################################################################################
# What the consumer reads and writes (for its least-privilege role)
################################################################################

variable "stream_arn" {
  description = "ARN of the notification stream the event source mapping reads."
  type        = string
}

variable "config_table_arns" {
  description = "ARNs of the rules, collections and providers tables (read only)."
  type        = list(string)
}

variable "state_machine_arns" {
  description = "ARNs of the state machines the rules start (StartExecution, DescribeExecution)."
  type        = list(string)
}

variable "fallback_topic_arn" {
  description = "ARN of the SNS fallback topic the consumer publishes unroutable records to."
  type        = string
}

variable "response_stream_arn" {
  description = "ARN of the response stream the consumer writes FAILURE responses to."
  type        = string
}

variable "dlq_arn" {
  description = "ARN of the dead-letter queue (<prefix>-kinesisFailure) the consumer parks bad records in."
  type        = string
}

variable "dlq_url" {
  description = "URL of the dead-letter queue (DLQ_URL)."
  type        = string
}

variable "payload_bucket_arn" {
  description = "ARN of the bucket holding payloads too large for SNS/SQS."
  type        = string
}

################################################################################
# Event source mapping
################################################################################

variable "batch_size" {
  description = "Largest number of records per invocation (1-10000)."
  type        = number
  default     = 100

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be a whole number between 1 and 10000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "Seconds to gather records before invoking (0-300)."
  type        = number
  default     = 0

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300
    error_message = "maximum_batching_window_in_seconds must be between 0 and 300."
  }
}

variable "starting_position" {
  description = "Where a new mapping starts reading: TRIM_HORIZON (oldest record, nothing is skipped), LATEST or AT_TIMESTAMP (with starting_position_timestamp)."
  type        = string
  default     = "TRIM_HORIZON"

  validation {
    condition     = contains(["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"], var.starting_position)
    error_message = "starting_position must be TRIM_HORIZON, LATEST or AT_TIMESTAMP."
  }
}

variable "starting_position_timestamp" {
  description = "RFC 3339 timestamp to start reading from; required when starting_position is AT_TIMESTAMP."
  type        = string
  default     = null

  validation {
    condition     = var.starting_position_timestamp == null || can(formatdate("YYYY", var.starting_position_timestamp))
    error_message = "starting_position_timestamp must be an RFC 3339 timestamp, e.g. 2025-01-01T00:00:00Z."
  }
}

variable "parallelization_factor" {
  description = "Concurrent batches per shard (1-10). Records with the same partition key stay in order."
  type        = number
  default     = 1

  validation {
    condition     = var.parallelization_factor >= 1 && var.parallelization_factor <= 10 && floor(var.parallelization_factor) == var.parallelization_factor
    error_message = "parallelization_factor must be a whole number between 1 and 10."
  }
}

variable "bisect_batch_on_function_error" {
  description = "Split a failing batch in two and retry the halves, isolating a poison record."
  type        = bool
  default     = true
}

variable "maximum_retry_attempts" {
  description = "Retries of a failing batch before it goes to the on-failure destination (0-10000). -1 means retry until the record expires from the stream: one poison record then blocks its shard for the whole retention period; not recommended."
  type        = number
  default     = 3

  validation {
    condition     = var.maximum_retry_attempts >= -1 && var.maximum_retry_attempts <= 10000 && floor(var.maximum_retry_attempts) == var.maximum_retry_attempts
    error_message = "maximum_retry_attempts must be a whole number between -1 (infinite, not recommended) and 10000."
  }
}

variable "maximum_record_age_in_seconds" {
  description = "Records older than this go to the on-failure destination instead of being processed (60-604800). -1 means no limit (not recommended)."
  type        = number
  default     = 3600

  validation {
    condition     = var.maximum_record_age_in_seconds == -1 || (var.maximum_record_age_in_seconds >= 60 && var.maximum_record_age_in_seconds <= 604800)
    error_message = "maximum_record_age_in_seconds must be -1 (no limit, not recommended) or between 60 and 604800."
  }
}

variable "function_response_types" {
  description = "Response types of the mapping; [\"ReportBatchItemFailures\"] lets the consumer retry from the first failed record only (partial batch response)."
  type        = list(string)
  default     = ["ReportBatchItemFailures"]

  validation {
    condition     = alltrue([for t in var.function_response_types : t == "ReportBatchItemFailures"])
    error_message = "The only supported function response type is \"ReportBatchItemFailures\"."
  }
}

variable "esm_enabled" {
  description = "Whether the event source mapping is enabled (false pauses ingestion; records wait in the stream)."
  type        = bool
  default     = true
}

variable "on_failure_destination" {
  description = "Where the mapping sends a batch it gives up on: \"sns\" (the failed-batch topic created here: metadata only, the hydrate function re-reads the records into the DLQ) or \"s3\" (a bucket: AWS writes the whole invocation record, payload included)."
  type        = string
  default     = "sns"

  validation {
    condition     = contains(["sns", "s3"], var.on_failure_destination)
    error_message = "on_failure_destination must be \"sns\" or \"s3\"."
  }
}

variable "on_failure_s3_bucket_arn" {
  description = "Existing bucket ARN for on_failure_destination = \"s3\"; null creates <prefix>-failed-batches-<account id>."
  type        = string
  default     = null
}

variable "on_failure_s3_expiration_days" {
  description = "Expiry in days of the failed-batch objects in the bucket this module creates (null keeps them)."
  type        = number
  default     = 90

  validation {
    condition     = var.on_failure_s3_expiration_days == null || try(var.on_failure_s3_expiration_days >= 14 && var.on_failure_s3_expiration_days <= 36500, false)
    error_message = "on_failure_s3_expiration_days must be null or between 14 and 36500."
  }
}

variable "force_destroy_buckets" {
  description = "Let Terraform delete the failed-batch bucket with its objects (for test stacks)."
  type        = bool
  default     = false
}

variable "topic_kms_master_key_id" {
  description = "KMS key for the failed-batch SNS topic; the AWS managed key alias/aws/sns unless a customer key is given."
  type        = string
  default     = "alias/aws/sns"
}

variable "enhanced_fan_out" {
  description = "Read through a dedicated enhanced fan-out consumer (aws_kinesis_stream_consumer): own 2 MB/s per shard and lower latency, at extra cost."
  type        = bool
  default     = false
}

variable "payload_key_prefix" {
  description = "Key prefix under which the handlers store large payloads in the payload bucket (cnm_ingest.dlq writes failed-records/<sha256>)."
  type        = string
  default     = "failed-records/"
}

variable "workflow_payload_key_prefix" {
  description = "Key prefix under which large parts of workflow messages are stored in the payload bucket when an execution is started (cnm_ingest.message.KEY_PREFIX)."
  type        = string
  default     = "workflow/"
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

variable "idempotency_deletion_protection_enabled" {
  description = "Deletion protection on the idempotency table."
  type        = bool
  default     = false
}

variable "start_concurrency" {
  description = "Largest number of concurrent StartExecution calls per invocation (START_CONCURRENCY). 64 starts 100 records in about 2 call latencies."
  type        = number
  default     = 64

  validation {
    condition     = var.start_concurrency >= 1 && var.start_concurrency <= 256 && floor(var.start_concurrency) == var.start_concurrency
    error_message = "start_concurrency must be a whole number between 1 and 256."
  }
}

variable "start_rate_limit" {
  description = "Cap on StartExecution calls per second per consumer instance (START_RATE_LIMIT); 0 = no cap (throttling is absorbed by a shared backoff). Set it where throttling is expected to be sustained, e.g. to the account's StartExecution refill rate (about 300/s in most regions) divided by the shards * parallelization factor."
  type        = number
  default     = 0

  validation {
    condition     = var.start_rate_limit >= 0 && var.start_rate_limit <= 10000
    error_message = "start_rate_limit must be between 0 (no cap) and 10000."
  }
}

variable "start_rate_burst" {
  description = "Token bucket size for start_rate_limit (START_RATE_BURST); 0 = one second's worth."
  type        = number
  default     = 0

  validation {
    condition     = var.start_rate_burst >= 0 && var.start_rate_burst <= 10000
    error_message = "start_rate_burst must be between 0 and 10000."
  }
}

variable "start_max_attempts" {
  description = "Tries of one StartExecution while throttled within an invocation before the record becomes a batch item failure (START_MAX_ATTEMPTS)."
  type        = number
  default     = 10

  validation {
    condition     = var.start_max_attempts >= 1 && var.start_max_attempts <= 100 && floor(var.start_max_attempts) == var.start_max_attempts
    error_message = "start_max_attempts must be a whole number between 1 and 100."
  }
}
