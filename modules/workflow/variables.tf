################################################################################
# Naming and packages
################################################################################

variable "prefix" {
  description = "Prefix (stack name) for every resource name of the workflow."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.prefix))
    error_message = "prefix must be 1-40 characters of letters, digits, '-' and '_'."
  }
}

variable "package_dir" {
  description = "Directory holding build.py's manifest.json; manifest filenames are relative to it."
  type        = string
}

variable "manifest" {
  description = "The decoded build/manifest.json (docs/INTERFACES.md): runtime and functions[name].{filename, handler, base64sha256}."
  type        = any

  validation {
    condition = alltrue([
      for f in ["translate_message", "sync_granule", "cnm_response", "start_status", "stop_status"] :
      can(var.manifest.functions[f].filename) && can(var.manifest.functions[f].handler) && can(var.manifest.functions[f].base64sha256)
    ])
    error_message = "manifest.functions must describe translate_message, sync_granule, cnm_response, start_status and stop_status (filename, handler, base64sha256)."
  }
}

variable "layer_arn" {
  description = "ARN of the dependency layer (Powertools, fastjsonschema); null when the packages carry their dependencies."
  type        = string
  default     = null
}

################################################################################
# What the workflow reads and writes
################################################################################

variable "response_stream_arn" {
  description = "ARN of the Kinesis stream CnmResponse writes CNM responses to."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:[0-9]{12}:stream/.+$", var.response_stream_arn))
    error_message = "response_stream_arn must be a Kinesis stream ARN."
  }
}

variable "response_stream_kms_key_arn" {
  description = "Customer managed KMS key of the response stream (CnmResponse gets kms:GenerateDataKey on it); null when the stream uses an AWS managed key or none."
  type        = string
  default     = null
}

variable "response_topic_arn" {
  description = "Optional SNS topic that also receives every CNM response (RESPONSE_TOPIC_ARN); null for none."
  type        = string
  default     = null

  validation {
    condition     = var.response_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:.+$", var.response_topic_arn))
    error_message = "response_topic_arn must be null or an SNS topic ARN."
  }
}

variable "response_destinations" {
  description = "More Kinesis stream ARNs and SNS topic ARNs that each receive every CNM response (RESPONSE_DESTINATIONS, a JSON list), besides response_stream_arn and response_topic_arn. SNS messages carry the attributes CNM_RESPONSE_STATUS, COLLECTION, DATA_VERSION, dataProcessingType and trace."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([for arn in var.response_destinations :
    can(regex("^arn:aws[a-z-]*:(kinesis:[a-z0-9-]+:[0-9]{12}:stream/[A-Za-z0-9_.-]{1,128}|sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\\.fifo)?)$", arn))])
    error_message = "Each of response_destinations must be a Kinesis stream ARN or an SNS topic ARN."
  }
}

variable "response_destinations_kms_key_arns" {
  description = "Customer managed KMS keys of the response_destinations, if any (CnmResponse gets kms:GenerateDataKey on them)."
  type        = list(string)
  default     = []
}

variable "distribution_endpoint" {
  description = "Optional base URL (https://...) of the DAAC's distribution; when set, SUCCESS responses give each file as <distribution_endpoint>/<bucket>/<key> instead of s3://bucket/key (DISTRIBUTION_ENDPOINT)."
  type        = string
  default     = null

  validation {
    condition     = var.distribution_endpoint == null || can(regex("^https?://[^/?#\\s]+(/[^?#\\s]*)?$", var.distribution_endpoint))
    error_message = "distribution_endpoint must be null or an http(s) URL without query or fragment."
  }
}

variable "placement_bucket_names" {
  description = "Buckets that collection files entries place granule files in (meta.buckets names besides the staging bucket); SyncGranule may write, read, delete and list them."
  type        = list(string)
  default     = []
}

variable "provider_secret_arns" {
  description = "Secrets Manager secrets holding http(s) providers' credentials; SyncGranule may read them."
  type        = list(string)
  default     = []
}

variable "response_topic_kms_key_arn" {
  description = "Customer managed KMS key of response_topic_arn, if any (CnmResponse gets kms:GenerateDataKey on it)."
  type        = string
  default     = null
}

variable "staging_bucket_name" {
  description = "Existing bucket SyncGranule stages files into (meta.buckets.private.name); SyncGranule may read, write, delete and list it."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.staging_bucket_name))
    error_message = "staging_bucket_name must be a valid S3 bucket name."
  }
}

variable "staging_bucket_kms_key_arn" {
  description = "Customer managed KMS key of the staging bucket's default encryption, if any (SyncGranule may use it)."
  type        = string
  default     = null
}

variable "provider_bucket_arns" {
  description = "ARNs of the provider buckets SyncGranule copies from (s3:GetObject on their objects)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.provider_bucket_arns : can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]+$", arn))])
    error_message = "provider_bucket_arns must be bucket ARNs (arn:aws:s3:::bucket-name)."
  }
}

variable "provider_kms_key_arns" {
  description = "Customer managed KMS keys encrypting provider objects, if any (SyncGranule gets kms:Decrypt on them)."
  type        = list(string)
  default     = []
}

variable "payload_bucket_name" {
  description = "Bucket holding the workflow message's large parts (PAYLOAD_BUCKET: the CNM, granule list and response above workflow_offload_bytes, under workflow/) and large parked responses (failed-responses/). Must be the bucket the consumers write to. null disables offloading: a message above the threshold then fails its task."
  type        = string
  default     = null

  validation {
    condition     = var.payload_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", coalesce(var.payload_bucket_name, "x")))
    error_message = "payload_bucket_name must be null or a valid S3 bucket name."
  }
}

variable "payload_bucket_kms_key_arn" {
  description = "Customer managed KMS key of the payload bucket, if any (every task may use it)."
  type        = string
  default     = null
}

variable "workflow_offload_bytes" {
  description = "WORKFLOW_OFFLOAD_BYTES: above this size (bytes of JSON) the workflow message's largest parts move to the payload bucket. Step Functions allows 256 KiB per state input/output; the rest is headroom for the task envelope and a caught error. Give the consumers the same value."
  type        = number
  default     = 204800

  validation {
    condition     = var.workflow_offload_bytes >= 4096 && var.workflow_offload_bytes <= 229376 && floor(var.workflow_offload_bytes) == var.workflow_offload_bytes
    error_message = "workflow_offload_bytes must be a whole number between 4096 and 229376 (224 KiB)."
  }
}

variable "dlq_url" {
  description = "URL of the dead-letter queue where ParkResponse parks a response that could not be delivered (DLQ_URL of CnmResponse); null leaves such a response unparked (the execution still fails)."
  type        = string
  default     = null
}

variable "dlq_arn" {
  description = "ARN of the dead-letter queue of dlq_url (CnmResponse gets sqs:SendMessage on it)."
  type        = string
  default     = null

  validation {
    condition     = var.dlq_arn == null || can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:.+$", coalesce(var.dlq_arn, "x")))
    error_message = "dlq_arn must be null or an SQS queue ARN."
  }
}

variable "dlq_kms_key_arn" {
  description = "Customer managed KMS key of the dead-letter queue, if any (CnmResponse gets kms:GenerateDataKey on it)."
  type        = string
  default     = null
}

################################################################################
# Security, logging, tracing
################################################################################

variable "kms_key_arn" {
  description = "Customer managed KMS key for the status table, the log groups and the functions' environment; null uses AWS managed keys. Its key policy must allow CloudWatch Logs (logs.<region>.amazonaws.com) to use it."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the functions' and the state machine's log groups, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "log_level" {
  description = "State machine log level: ALL, ERROR, FATAL or OFF. A Powertools level (DEBUG, INFO, WARNING, ERROR, CRITICAL) is also accepted and mapped (DEBUG/INFO -> ALL, WARNING/ERROR -> ERROR, CRITICAL -> FATAL)."
  type        = string
  default     = "ERROR"

  validation {
    condition     = contains(["ALL", "ERROR", "FATAL", "OFF", "DEBUG", "INFO", "WARNING", "CRITICAL"], var.log_level)
    error_message = "log_level must be ALL, ERROR, FATAL or OFF (or a Powertools level: DEBUG, INFO, WARNING, ERROR, CRITICAL)."
  }
}

variable "function_log_level" {
  description = "POWERTOOLS_LOG_LEVEL of the task functions; null uses log_level when it is a Powertools level, else INFO."
  type        = string
  default     = null

  validation {
    condition     = var.function_log_level == null || contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], coalesce(var.function_log_level, "INFO"))
    error_message = "function_log_level must be null, DEBUG, INFO, WARNING, ERROR or CRITICAL."
  }
}

variable "include_execution_data" {
  description = "Log execution input/output (CNM contents) in the state machine's log group. Off by default: the data may be sensitive."
  type        = bool
  default     = false
}

variable "tracing_enabled" {
  description = "Enable AWS X-Ray tracing on the state machine and the task functions."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource of this module."
  type        = map(string)
  default     = {}
}

################################################################################
# Retries
################################################################################

variable "sync_retry_interval_seconds" {
  description = "Seconds before SyncGranule's first retry after a transient error (doubled on each retry)."
  type        = number
  default     = 10

  validation {
    condition     = var.sync_retry_interval_seconds >= 1 && var.sync_retry_interval_seconds <= 3600 && floor(var.sync_retry_interval_seconds) == var.sync_retry_interval_seconds
    error_message = "sync_retry_interval_seconds must be a whole number between 1 and 3600."
  }
}

variable "sync_retry_max_attempts" {
  description = "Retries of SyncGranule after transient errors (0 disables retries)."
  type        = number
  default     = 3

  validation {
    condition     = var.sync_retry_max_attempts >= 0 && var.sync_retry_max_attempts <= 20 && floor(var.sync_retry_max_attempts) == var.sync_retry_max_attempts
    error_message = "sync_retry_max_attempts must be a whole number between 0 and 20."
  }
}

variable "response_retry_interval_seconds" {
  description = "Seconds before CnmResponse's first retry after a transient error (doubled on each retry)."
  type        = number
  default     = 5

  validation {
    condition     = var.response_retry_interval_seconds >= 1 && var.response_retry_interval_seconds <= 3600 && floor(var.response_retry_interval_seconds) == var.response_retry_interval_seconds
    error_message = "response_retry_interval_seconds must be a whole number between 1 and 3600."
  }
}

variable "response_retry_max_attempts" {
  description = "Retries of CnmResponse after transient errors (0 disables retries)."
  type        = number
  default     = 3

  validation {
    condition     = var.response_retry_max_attempts >= 0 && var.response_retry_max_attempts <= 20 && floor(var.response_retry_max_attempts) == var.response_retry_max_attempts
    error_message = "response_retry_max_attempts must be a whole number between 0 and 20."
  }
}

################################################################################
# DAAC extension
################################################################################

variable "extra_states" {
  description = "JSON object of additional states run between SyncGranule and CnmResponse (\"\" for none). The chain starts at the state named by extra_states_start_at and its last state has \"Next\": \"CnmResponse\"; each Task should Catch States.ALL with ResultPath \"$.exception\" and Next \"CnmResponse\" so a failure is answered."
  type        = string
  default     = ""

  validation {
    condition     = var.extra_states == "" || can(length(keys(jsondecode(var.extra_states))) > 0)
    error_message = "extra_states must be \"\" or a non-empty JSON object of states."
  }

  validation {
    condition = var.extra_states == "" || length(setintersection(
      try(keys(jsondecode(var.extra_states)), []),
      ["StartStatus", "TranslateMessage", "SyncGranule", "CnmResponse", "ParkResponse", "StopStatus", "CheckOutcome", "WorkflowSucceeded", "WorkflowFailed"]
    )) == 0
    error_message = "extra_states must not redefine a built-in state (StartStatus, TranslateMessage, SyncGranule, CnmResponse, ParkResponse, StopStatus, CheckOutcome, WorkflowSucceeded, WorkflowFailed)."
  }
}

variable "extra_states_start_at" {
  description = "Name of the first state of extra_states (SyncGranule's Next). Required when extra_states is set."
  type        = string
  default     = null
}

variable "extra_states_policy_json" {
  description = "IAM policy document (JSON) added to the state machine role for what extra_states call (e.g. lambda:InvokeFunction on the DAAC's functions); null for none."
  type        = string
  default     = null
}

################################################################################
# Task functions
################################################################################

variable "sync_granule_timeout" {
  description = "Timeout of the SyncGranule function in seconds (it copies and checksums every file of a granule)."
  type        = number
  default     = 900

  validation {
    condition     = var.sync_granule_timeout >= 1 && var.sync_granule_timeout <= 900
    error_message = "sync_granule_timeout must be between 1 and 900 seconds."
  }
}

variable "sync_granule_memory_size" {
  description = "Memory of the SyncGranule function in MB (more memory is more CPU for checksums)."
  type        = number
  default     = 1024

  validation {
    condition     = var.sync_granule_memory_size >= 128 && var.sync_granule_memory_size <= 10240
    error_message = "sync_granule_memory_size must be between 128 and 10240 MB."
  }
}
