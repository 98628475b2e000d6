################################################################################
# Required
################################################################################

variable "prefix" {
  description = "Name prefix of every resource (the stack name, written to meta.stack): 3-32 lowercase letters, digits and hyphens, starting with a letter."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.prefix))
    error_message = "prefix must be 3-32 characters of lowercase letters, digits and '-', start with a letter and not end with '-'."
  }
}

variable "staging_bucket_name" {
  description = "Existing bucket the workflow stages granule files into (the \"private\" bucket of meta.buckets)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.staging_bucket_name))
    error_message = "staging_bucket_name must be a valid S3 bucket name."
  }
}

################################################################################
# General
################################################################################

variable "provider_bucket_arns" {
  description = "ARNs of the provider buckets the workflow copies granule files from (read access is granted on them)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.provider_bucket_arns : can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]+$", arn))])
    error_message = "provider_bucket_arns must be bucket ARNs (arn:aws:s3:::bucket-name)."
  }
}

variable "buckets" {
  description = "Further Cumulus-style buckets for meta.buckets (key => {name, type}); \"private\" defaults to staging_bucket_name."
  type = map(object({
    name = string
    type = string
  }))
  default = {}
}

variable "package_dir" {
  description = "Directory holding manifest.json and the Lambda packages written by build.py (`python build.py --out DIR`); <module>/build when null, where the release archive carries them. The plan stops when they are missing or of another version than the module."
  type        = string
  default     = null
}

variable "account_id" {
  description = "AWS account id the stack is deployed in, naming the default payload and failed-batch buckets; null reads it from STS (aws_caller_identity). Set it to plan without STS (a CI plan with the provider's skip_requesting_account_id)."
  type        = string
  default     = null

  validation {
    condition     = var.account_id == null || can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits, or null to read it from STS."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "Customer managed KMS key ARN encrypting streams, topics, the DLQ, buckets, tables, log groups and Lambda environments. null uses the AWS managed keys (aws/kinesis, aws/sns, SQS-managed SSE, aws/s3, aws/dynamodb). The key policy must let CloudWatch Logs, SNS (for DLQ redrive) and CloudWatch (alarm topic) use it; see examples/complete."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "force_destroy_buckets" {
  description = "Let Terraform delete the buckets this module creates while they still hold objects (test stacks only)."
  type        = bool
  default     = false
}

################################################################################
# Lambda functions (every setting of every function: packages.tf builds one
# object per function from these)
################################################################################

variable "log_retention_days" {
  description = "Retention of every function's CloudWatch log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "log_level" {
  description = "Log level of every function (POWERTOOLS_LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL."
  }
}

variable "tracing_enabled" {
  description = "Enable AWS X-Ray active tracing on every function and the state machine."
  type        = bool
  default     = false
}

variable "lambda_function_settings" {
  description = "Per-function overrides of timeout (s), memory_size (MB) and reserved_concurrent_executions, keyed by function (message_consumer, fallback_consumer, hydrate, inbound_logger, outbound_logger, start_status, translate_message, sync_granule, cnm_response, stop_status, recorder, reconcile) or \"defaults\" for every function. A function's setting wins over \"defaults\", which wins over the built-in default (consumers and hydrate 300 s / 512 MB, sync_granule 900 s / 1024 MB, the rest 60 s / 256 MB, unreserved)."
  type = map(object({
    timeout                        = optional(number)
    memory_size                    = optional(number)
    reserved_concurrent_executions = optional(number)
  }))
  default = {}

  validation {
    condition = alltrue([for k in keys(var.lambda_function_settings) : contains([
      "defaults", "message_consumer", "fallback_consumer", "hydrate", "inbound_logger", "outbound_logger",
      "start_status", "translate_message", "sync_granule", "cnm_response", "stop_status", "recorder", "reconcile",
    ], k)])
    error_message = "lambda_function_settings keys must be defaults, message_consumer, fallback_consumer, hydrate, inbound_logger, outbound_logger, start_status, translate_message, sync_granule, cnm_response, stop_status, recorder or reconcile."
  }

  validation {
    condition     = alltrue([for s in values(var.lambda_function_settings) : s.timeout == null || try(s.timeout >= 1 && s.timeout <= 900, false)])
    error_message = "timeout must be between 1 and 900 seconds."
  }

  validation {
    condition     = alltrue([for s in values(var.lambda_function_settings) : s.memory_size == null || try(s.memory_size >= 128 && s.memory_size <= 10240, false)])
    error_message = "memory_size must be between 128 and 10240 MB."
  }

  validation {
    condition     = alltrue([for s in values(var.lambda_function_settings) : s.reserved_concurrent_executions == null || try(s.reserved_concurrent_executions >= 0 && floor(s.reserved_concurrent_executions) == s.reserved_concurrent_executions, false)])
    error_message = "reserved_concurrent_executions must be null or a whole number >= 0."
  }
}

################################################################################
# Network and IAM placement (NGAP: functions in a VPC, roles under a boundary)
################################################################################

variable "lambda_subnet_ids" {
  description = "Subnets every Lambda function runs in (NGAP and other VPC-bound accounts); empty runs them outside a VPC. Needs lambda_security_group_ids or vpc_id. The subnets must reach the AWS APIs the functions call (VPC endpoints or NAT), and each function's role gets the network-interface permissions."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.lambda_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))])
    error_message = "lambda_subnet_ids must be subnet IDs (subnet-0123abcd...)."
  }
}

variable "lambda_security_group_ids" {
  description = "Security groups of every Lambda function in lambda_subnet_ids; empty with vpc_id set creates <prefix>-lambda (no inbound, HTTPS out)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.lambda_security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", id))])
    error_message = "lambda_security_group_ids must be security group IDs (sg-0123abcd...)."
  }
}

variable "vpc_id" {
  description = "VPC of lambda_subnet_ids, in which the functions' security group <prefix>-lambda is created when lambda_security_group_ids is empty; null for none."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must be a VPC ID (vpc-0123abcd...)."
  }
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary policy ARN set on every IAM role the module creates (NGAP requires one, e.g. arn:aws:iam::<account>:policy/NGAPShRoleBoundary); null for none."
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be an IAM policy ARN (arn:aws:iam::<account>:policy/<name>)."
  }
}

variable "role_path" {
  description = "IAM path of every role the module creates (e.g. /NGAPShRole/)."
  type        = string
  default     = "/"

  validation {
    condition     = can(regex("^/([\\x21-\\x7E]{1,510}/)?$", var.role_path)) && length(var.role_path) <= 512
    error_message = "role_path must begin and end with '/' (at most 512 printable ASCII characters)."
  }
}

################################################################################
# Streams
################################################################################

variable "existing_notification_stream_arn" {
  description = "ARN of an existing notification stream to read; when set, no notification stream is created."
  type        = string
  default     = null

  validation {
    condition     = var.existing_notification_stream_arn == null || can(regex("^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:[0-9]{12}:stream/.+$", var.existing_notification_stream_arn))
    error_message = "existing_notification_stream_arn must be a Kinesis stream ARN."
  }
}

variable "existing_notification_stream_kms_key_arn" {
  description = "Customer managed KMS key of the existing notification stream, if it uses one (the readers get kms:Decrypt on it)."
  type        = string
  default     = null
}

variable "existing_response_stream_arn" {
  description = "ARN of an existing response stream to write; when set, no response stream is created."
  type        = string
  default     = null

  validation {
    condition     = var.existing_response_stream_arn == null || can(regex("^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:[0-9]{12}:stream/.+$", var.existing_response_stream_arn))
    error_message = "existing_response_stream_arn must be a Kinesis stream ARN."
  }
}

variable "existing_response_stream_kms_key_arn" {
  description = "Customer managed KMS key of the existing response stream, if it uses one (the writers get kms:GenerateDataKey on it)."
  type        = string
  default     = null
}

variable "stream_mode" {
  description = "Capacity mode of the streams created here: ON_DEMAND or PROVISIONED."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.stream_mode)
    error_message = "stream_mode must be ON_DEMAND or PROVISIONED."
  }
}

variable "notification_stream_shard_count" {
  description = "Shards of the notification stream when stream_mode is PROVISIONED."
  type        = number
  default     = 1

  validation {
    condition     = var.notification_stream_shard_count >= 1 && var.notification_stream_shard_count <= 10000
    error_message = "notification_stream_shard_count must be between 1 and 10000."
  }
}

variable "response_stream_shard_count" {
  description = "Shards of the response stream when stream_mode is PROVISIONED."
  type        = number
  default     = 1

  validation {
    condition     = var.response_stream_shard_count >= 1 && var.response_stream_shard_count <= 10000
    error_message = "response_stream_shard_count must be between 1 and 10000."
  }
}

variable "stream_retention_hours" {
  description = "Hours records stay in the streams created here (24-8760). Failed batches can be re-read (hydrated) only within this window, so keep it well above maximum_record_age_in_seconds."
  type        = number
  default     = 168

  validation {
    condition     = var.stream_retention_hours >= 24 && var.stream_retention_hours <= 8760
    error_message = "stream_retention_hours must be between 24 and 8760."
  }
}

################################################################################
# Message consumer event source mapping
################################################################################

variable "batch_size" {
  description = "Largest number of records per message consumer invocation (1-10000)."
  type        = number
  default     = 100

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be a whole number between 1 and 10000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "Seconds the mapping gathers records before invoking the consumer (0-300)."
  type        = number
  default     = 0

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300
    error_message = "maximum_batching_window_in_seconds must be between 0 and 300."
  }
}

variable "starting_position" {
  description = "Where the mapping starts reading when created: TRIM_HORIZON (nothing skipped), LATEST, or AT_TIMESTAMP with starting_position_timestamp."
  type        = string
  default     = "TRIM_HORIZON"

  validation {
    condition     = contains(["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"], var.starting_position)
    error_message = "starting_position must be TRIM_HORIZON, LATEST or AT_TIMESTAMP."
  }
}

variable "starting_position_timestamp" {
  description = "RFC 3339 timestamp to start from; required when starting_position is AT_TIMESTAMP."
  type        = string
  default     = null

  validation {
    condition     = var.starting_position_timestamp == null || can(formatdate("YYYY", var.starting_position_timestamp))
    error_message = "starting_position_timestamp must be an RFC 3339 timestamp, e.g. 2025-01-01T00:00:00Z."
  }
}

variable "parallelization_factor" {
  description = "Concurrent batches per shard (1-10); order is kept per partition key."
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
  description = "Retries of a failing batch before it goes to the on-failure destination (0-10000). -1 retries until the records expire, blocking the shard behind a poison record: not recommended."
  type        = number
  default     = 3

  validation {
    condition     = var.maximum_retry_attempts >= -1 && var.maximum_retry_attempts <= 10000 && floor(var.maximum_retry_attempts) == var.maximum_retry_attempts
    error_message = "maximum_retry_attempts must be a whole number between -1 (infinite, not recommended) and 10000."
  }
}

variable "maximum_record_age_in_seconds" {
  description = "Records older than this go to the on-failure destination unprocessed (60-604800); -1 for no limit (not recommended)."
  type        = number
  default     = 3600

  validation {
    condition     = var.maximum_record_age_in_seconds == -1 || (var.maximum_record_age_in_seconds >= 60 && var.maximum_record_age_in_seconds <= 604800)
    error_message = "maximum_record_age_in_seconds must be -1 (no limit, not recommended) or between 60 and 604800."
  }
}

variable "function_response_types" {
  description = "Response types of the consumer mapping; [\"ReportBatchItemFailures\"] (partial batch response) retries from the first failed record only. [] turns it off (not recommended)."
  type        = list(string)
  default     = ["ReportBatchItemFailures"]

  validation {
    condition     = alltrue([for t in var.function_response_types : t == "ReportBatchItemFailures"])
    error_message = "The only supported function response type is \"ReportBatchItemFailures\"."
  }
}

variable "on_failure_destination" {
  description = "Where the consumer mapping sends a batch it gives up on: \"sns\" (failed-batch topic -> hydrate function -> DLQ with payloads) or \"s3\" (bucket; AWS writes the records themselves, no hydrate function)."
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

  validation {
    condition     = var.on_failure_s3_bucket_arn == null || can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]+$", var.on_failure_s3_bucket_arn))
    error_message = "on_failure_s3_bucket_arn must be a bucket ARN."
  }
}

variable "enhanced_fan_out" {
  description = "Let the message consumer read through a dedicated enhanced fan-out consumer of the notification stream."
  type        = bool
  default     = false
}

variable "rules_cache_seconds" {
  description = "How long the consumers cache rules, collections and providers (RULES_CACHE_SECONDS)."
  type        = number
  default     = 60

  validation {
    condition     = var.rules_cache_seconds >= 0 && var.rules_cache_seconds <= 3600
    error_message = "rules_cache_seconds must be between 0 and 3600."
  }
}

################################################################################
# Fallback, dead-letter queue, hydrate, payloads
################################################################################

variable "fallback_maximum_retry_attempts" {
  description = "Lambda retries of a failed fallback consumer invocation (0-2) before the record goes to the DLQ."
  type        = number
  default     = 2

  validation {
    condition     = var.fallback_maximum_retry_attempts >= 0 && var.fallback_maximum_retry_attempts <= 2
    error_message = "fallback_maximum_retry_attempts must be 0, 1 or 2."
  }
}

variable "fallback_maximum_event_age_in_seconds" {
  description = "Age after which an unprocessed fallback event goes to the DLQ (60-21600)."
  type        = number
  default     = 21600

  validation {
    condition     = var.fallback_maximum_event_age_in_seconds >= 60 && var.fallback_maximum_event_age_in_seconds <= 21600
    error_message = "fallback_maximum_event_age_in_seconds must be between 60 and 21600."
  }
}

variable "dlq_redrive_source_queue_arns" {
  description = "Queues allowed to use the kinesisFailure queue as their dead-letter queue (redrive allow policy); empty allows all of the account."
  type        = list(string)
  default     = []
}

variable "max_get_records_calls" {
  description = "Bound on the hydrate function's GetRecords calls per failed batch."
  type        = number
  default     = 100

  validation {
    condition     = var.max_get_records_calls >= 1 && var.max_get_records_calls <= 10000
    error_message = "max_get_records_calls must be between 1 and 10000."
  }
}

variable "hydrate_get_records_limit" {
  description = "Optional Limit of each GetRecords call of the hydrate function; null for the Kinesis maximum."
  type        = number
  default     = null

  validation {
    condition     = var.hydrate_get_records_limit == null || try(var.hydrate_get_records_limit >= 1 && var.hydrate_get_records_limit <= 10000, false)
    error_message = "hydrate_get_records_limit must be null or between 1 and 10000."
  }
}

variable "payload_bucket_name" {
  description = "Name of the bucket created for payloads too large for SNS/SQS; <prefix>-payloads-<account id> when null."
  type        = string
  default     = null
}

variable "payload_bucket_versioning_enabled" {
  description = "Enable versioning on the payload bucket (protects payloads from overwrite/deletion; noncurrent versions expire with payload_bucket_expiration_days)."
  type        = bool
  default     = true
}

variable "payload_bucket_expiration_days" {
  description = "Days after which large payloads expire (14-36500): never before the DLQ messages pointing at them (14 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.payload_bucket_expiration_days >= 14 && var.payload_bucket_expiration_days <= 36500
    error_message = "payload_bucket_expiration_days must be between 14 (the DLQ retention) and 36500."
  }
}

################################################################################
# Loggers
################################################################################

variable "create_inbound_logger" {
  description = "Create the logger function on the notification stream."
  type        = bool
  default     = true
}

variable "create_outbound_logger" {
  description = "Create the logger function on the response stream."
  type        = bool
  default     = true
}

variable "log_max_bytes" {
  description = "Cap on the logged size of one record (LOG_MAX_BYTES)."
  type        = number
  default     = 16384

  validation {
    condition     = var.log_max_bytes >= 256 && var.log_max_bytes <= 262144
    error_message = "log_max_bytes must be between 256 and 262144."
  }
}

################################################################################
# Configuration tables
################################################################################

variable "rules" {
  description = "Ingest rules, matched as Cumulus matches kinesis rules: a CNM for collection name and version (collection.version, else product.dataVersion; a rule version of \"\" = any) from provider (\"\" = any; a CNM without provider matches; meta.allowProviderMismatchOnRuleFilter overrides allow_provider_mismatch) arriving on stream_arn (null = the notification stream; one event source mapping per distinct stream) starts workflow_arn (null = the built-in CNM workflow) under a name beginning with execution_name_prefix. Only ENABLED rules start workflows."
  type = list(object({
    name                  = string
    collection            = object({ name = string, version = optional(string, "") })
    provider              = optional(string, "")
    workflow_arn          = optional(string)
    state                 = optional(string, "ENABLED")
    meta                  = optional(map(any), {})
    stream_arn            = optional(string)
    execution_name_prefix = optional(string, "")
  }))
  default = []

  validation {
    condition     = alltrue([for r in var.rules : contains(["ENABLED", "DISABLED"], r.state)])
    error_message = "Every rule state must be \"ENABLED\" or \"DISABLED\"."
  }

  validation {
    condition     = length(distinct([for r in var.rules : r.name])) == length(var.rules)
    error_message = "Rule names must be unique."
  }

  validation {
    condition     = alltrue([for r in var.rules : r.workflow_arn == null || can(regex("^arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:stateMachine:.+$", r.workflow_arn))])
    error_message = "A rule's workflow_arn must be null or a Step Functions state machine ARN."
  }

  validation {
    condition     = alltrue([for r in var.rules : r.stream_arn == null || can(regex("^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:[0-9]{12}:stream/[A-Za-z0-9_.-]{1,128}$", r.stream_arn))])
    error_message = "A rule's stream_arn must be null or a Kinesis stream ARN."
  }

  validation {
    condition     = alltrue([for r in var.rules : can(regex("^[0-9A-Za-z_-]{0,40}$", r.execution_name_prefix))])
    error_message = "A rule's execution_name_prefix must be at most 40 characters of 0-9, A-Z, a-z, _ and - (Step Functions execution names; the rest of the 80 characters name the record)."
  }
}

variable "allow_provider_mismatch" {
  description = "Cumulus's allow_provider_mismatch_on_rule_filter: when true, a rule with a provider also matches CNMs from other providers (the rule's provider configuration is still the one used to fetch files). A rule's meta.allowProviderMismatchOnRuleFilter (true or false) overrides this for that rule."
  type        = bool
  default     = false
  nullable    = false
}

variable "collections" {
  description = "Collections and their ingest configuration (url_path, duplicate_handling error|skip|replace|version, other_owner_handling same_provider|error|duplicate_handling, granule_id_extraction regex, checksum_required, buckets override, meta). other_owner_handling decides what happens when a file's target already holds a file another granule or provider staged: same_provider (default) lets another granule of the same provider follow duplicate_handling and refuses another provider's file (DuplicateFileError OtherOwnerFileError, nothing touched); error refuses any other granule's file too; duplicate_handling lets every existing file follow duplicate_handling, whoever staged it (an explicit choice to let providers replace each other's files)."
  type = list(object({
    name                  = string
    version               = string
    url_path              = optional(string, "file-staging/{stack}/{collection}")
    duplicate_handling    = optional(string, "error")
    other_owner_handling  = optional(string, "same_provider")
    granule_id_extraction = optional(string)
    checksum_required     = optional(bool, false)
    buckets               = optional(map(object({ name = string, type = string })))
    meta                  = optional(map(any), {})
  }))
  default = []

  validation {
    condition     = alltrue([for c in var.collections : contains(["error", "skip", "replace", "version"], c.duplicate_handling)])
    error_message = "duplicate_handling must be one of error, skip, replace, version."
  }

  validation {
    condition     = alltrue([for c in var.collections : contains(["same_provider", "error", "duplicate_handling"], c.other_owner_handling)])
    error_message = "other_owner_handling must be one of same_provider, error, duplicate_handling."
  }

  validation {
    condition     = length(distinct([for c in var.collections : "${c.name}___${c.version}"])) == length(var.collections)
    error_message = "Collections must be unique by name and version."
  }

  validation {
    condition     = alltrue([for c in var.collections : c.granule_id_extraction == null || can(regexall(c.granule_id_extraction, ""))])
    error_message = "granule_id_extraction must be a valid regular expression."
  }
}

variable "providers_config" {
  description = "Data providers: id (the CNM provider), protocol and host (bucket or host name). Named providers_config because \"providers\" is reserved in module blocks."
  type = list(object({
    id       = string
    protocol = optional(string, "s3")
    host     = string
    meta     = optional(map(any), {})
    # http/https/sftp sources (issue 13): port, Secrets Manager secret {"username", "password"} (sftp: or
    # "private_key"), connections per process, and for sftp the server's host key(s) as "<type> <base64>"
    port                   = optional(number)
    credentials_secret_arn = optional(string)
    globalConnectionLimit  = optional(number)
    host_key               = optional(list(string))
    # Folders (key prefixes, s3; path prefixes, http/https/sftp) the provider's files must be under (none = anywhere on host)
    allowed_prefixes = optional(list(string))
    # http/https/sftp: CIDRs the host may resolve into besides public addresses (on-premises providers in the VPC);
    # loopback, private, CGNAT, link-local and other non-public addresses are refused otherwise. Never link-local.
    allowed_networks = optional(list(string))
  }))
  default = []

  validation {
    condition     = length(distinct([for p in var.providers_config : p.id])) == length(var.providers_config)
    error_message = "Provider ids must be unique."
  }

  validation {
    condition     = alltrue([for p in var.providers_config : contains(["s3", "https", "http", "sftp"], p.protocol)])
    error_message = "Provider protocol must be s3, https, http or sftp."
  }

  validation {
    condition = alltrue([for p in var.providers_config : p.protocol != "sftp" || (
      p.credentials_secret_arn != null && length(coalesce(p.host_key, [])) > 0 &&
      alltrue([for k in coalesce(p.host_key, []) : can(regex("^[a-z0-9@.-]+ [A-Za-z0-9+/]+={0,2}$", k))])
    )])
    error_message = "An sftp provider needs credentials_secret_arn and host_key: the server's public key(s), each \"<type> <base64>\" (ssh-keyscan output without the host name)."
  }

  validation {
    condition     = alltrue([for p in var.providers_config : p.protocol != "http" || p.credentials_secret_arn == null])
    error_message = "An http provider cannot have credentials_secret_arn: credentials never travel over plain http (declare protocol https)."
  }

  validation {
    condition = alltrue([for p in var.providers_config : p.protocol == "s3" || (
      # a lower-case ASCII DNS name (no numeric form the C resolver reads as IPv4: 2130706433, 0x7f.1, 127.1),
      # a canonical dotted IPv4 address, or an IPv6 address
      can(regex("^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\\.?$", p.host)) &&
      !can(regex("^(0x[0-9a-f]*|[0-9]+)(\\.(0x[0-9a-f]*|[0-9]+)){0,3}\\.?$", p.host)) && !can(regex("\\.[0-9]+\\.?$", p.host))
      ) || can(regex("^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$", p.host)) || (
      can(cidrhost("${trimsuffix(trimprefix(p.host, "["), "]")}/128", 0)) && strcontains(p.host, ":")
    )])
    error_message = "An http, https or sftp provider's host must be a lower-case ASCII DNS name (the IDNA xn-- form for others) or a canonical IP address (no decimal, octal, hex or short IPv4 forms)."
  }

  validation {
    condition     = alltrue([for p in var.providers_config : p.port == null || try(p.port >= 1 && p.port <= 65535 && floor(p.port) == p.port, false)])
    error_message = "A provider's port must be a whole number from 1 to 65535."
  }

  validation {
    # each entry a CIDR written as its network address, neither inside nor containing a link-local range
    # (169.254.0.0/16, fe80::/10, fd00:ec2::/32: the instance metadata service)
    condition = alltrue(flatten([for p in var.providers_config : [for n in coalesce(p.allowed_networks, []) :
      try(
        cidrhost(n, 0) == split("/", n)[0] && alltrue([for ll in ["169.254.0.0/16", "fe80::/10", "fd00:ec2::/32"] :
          strcontains(n, ":") != strcontains(ll, ":") || (
            tonumber(split("/", n)[1]) <= tonumber(split("/", ll)[1])
            ? cidrhost("${split("/", ll)[0]}/${split("/", n)[1]}", 0) != split("/", n)[0]
            : cidrhost("${split("/", n)[0]}/${split("/", ll)[1]}", 0) != split("/", ll)[0]
          )
        ]),
        false
      )
    ]]))
    error_message = "allowed_networks entries must be CIDRs written as their network address (10.1.0.0/16, fd12:3456::/48) that neither lie in nor contain link-local (169.254.0.0/16, fe80::/10, fd00:ec2::/32: the instance metadata service)."
  }
}

variable "config_tables_deletion_protection_enabled" {
  description = "Deletion protection on five tables: <prefix>-rules, <prefix>-collections, <prefix>-providers (modules/config_tables), <prefix>-idempotency and the status store <prefix>-executions (modules/executions). While it is on, `terraform destroy` fails on those tables: set it to false and apply (or UpdateTable DeletionProtectionEnabled=false) first."
  type        = bool
  default     = true
}

variable "config_tables_point_in_time_recovery_enabled" {
  description = "Point-in-time recovery on <prefix>-rules, <prefix>-collections, <prefix>-providers and the status store <prefix>-executions (<prefix>-idempotency always has it)."
  type        = bool
  default     = true
}

################################################################################
# Workflow
################################################################################

variable "sync_retry_interval_seconds" {
  description = "Seconds before the first retry of a failed SyncGranule step."
  type        = number
  default     = 10

  validation {
    condition     = var.sync_retry_interval_seconds >= 1 && var.sync_retry_interval_seconds <= 3600
    error_message = "sync_retry_interval_seconds must be between 1 and 3600."
  }
}

variable "sync_retry_max_attempts" {
  description = "Retries of a failed SyncGranule step."
  type        = number
  default     = 3

  validation {
    condition     = var.sync_retry_max_attempts >= 0 && var.sync_retry_max_attempts <= 20
    error_message = "sync_retry_max_attempts must be between 0 and 20."
  }
}

variable "sync_concurrency" {
  description = "Files SyncGranule copies and verifies at once (SYNC_CONCURRENCY), with one shared backoff on S3 throttling."
  type        = number
  default     = 32

  validation {
    condition     = var.sync_concurrency >= 1 && var.sync_concurrency <= 256 && floor(var.sync_concurrency) == var.sync_concurrency
    error_message = "sync_concurrency must be a whole number between 1 and 256."
  }
}

variable "sync_deadline_margin_seconds" {
  description = "Seconds of a SyncGranule invocation kept for the files in flight, the commit and the answer (SYNC_DEADLINE_MARGIN_SECONDS): with less left, no new file starts and SyncGranule returns meta.sync_continuation, from which the workflow runs it again. At most half of sync_granule's timeout."
  type        = number
  default     = 120

  validation {
    condition     = var.sync_deadline_margin_seconds >= 10 && var.sync_deadline_margin_seconds <= 600 && floor(var.sync_deadline_margin_seconds) == var.sync_deadline_margin_seconds
    error_message = "sync_deadline_margin_seconds must be a whole number between 10 and 600."
  }
}

variable "sync_max_invocations" {
  description = "SyncGranule invocations one granule may take when it continues past deadlines (SYNC_MAX_INVOCATIONS; the workflow's Choice checks the same bound). The last one that would stop again, or one that verifies no new file, fails the granule (SyncUnfinishedError) and deletes its temporary copies."
  type        = number
  default     = 50

  validation {
    condition     = var.sync_max_invocations >= 1 && var.sync_max_invocations <= 1000 && floor(var.sync_max_invocations) == var.sync_max_invocations
    error_message = "sync_max_invocations must be a whole number between 1 and 1000."
  }
}

variable "contract_validation" {
  description = "Check every workflow step against its schemas (lambda_src/cnm_ingest/workflow/schemas) at run time: off (default), warn (log violations) or enforce (a violation fails the step, answered FAILURE)."
  type        = string
  default     = "off"
  nullable    = false

  validation {
    condition     = contains(["off", "warn", "enforce"], var.contract_validation)
    error_message = "contract_validation must be off, warn or enforce."
  }
}

variable "response_retry_interval_seconds" {
  description = "Seconds before the first retry of a failed CnmResponse step."
  type        = number
  default     = 5

  validation {
    condition     = var.response_retry_interval_seconds >= 1 && var.response_retry_interval_seconds <= 3600
    error_message = "response_retry_interval_seconds must be between 1 and 3600."
  }
}

variable "response_retry_max_attempts" {
  description = "Retries of a failed CnmResponse step."
  type        = number
  default     = 3

  validation {
    condition     = var.response_retry_max_attempts >= 0 && var.response_retry_max_attempts <= 20
    error_message = "response_retry_max_attempts must be between 0 and 20."
  }
}

variable "extra_states" {
  description = "JSON object of extra Step Functions states run between SyncGranule and CnmResponse (\"\" for none). The chain starts at extra_states_start_at and its last state has \"Next\": \"CnmResponse\"; each Task should Catch States.ALL with ResultPath \"$.exception\" and Next \"CnmResponse\" so a failure is answered."
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
  description = "Name of the first state of extra_states, which SyncGranule then goes to; the last extra state has \"Next\": \"CnmResponse\". Required when extra_states is set."
  type        = string
  default     = null
}

variable "extra_states_policy_json" {
  description = "IAM policy document (JSON) added to the state machine role for what extra_states call (e.g. lambda:InvokeFunction on the DAAC's own functions); null for none."
  type        = string
  default     = null
}

variable "state_machine_log_level" {
  description = "Step Functions logging level of the workflow: ALL, ERROR, FATAL or OFF."
  type        = string
  default     = "ERROR"

  validation {
    condition     = contains(["ALL", "ERROR", "FATAL", "OFF"], var.state_machine_log_level)
    error_message = "state_machine_log_level must be ALL, ERROR, FATAL or OFF."
  }
}

################################################################################
# Alarms
################################################################################

variable "create_alarms" {
  description = "Create the CloudWatch alarms (iterator age, DLQ not empty, function errors, failed/timed-out/aborted executions)."
  type        = bool
  default     = true
}

variable "create_dashboard" {
  description = "Create the CloudWatch dashboard <prefix>-cnm-ingest (dashboard.tf): records in and iterator age per stream, executions started/succeeded/failed, DLQ depth and age, answers by status and error code, and the reconcile metrics Unanswered, Stuck and Lost per collection."
  type        = bool
  default     = true
  nullable    = false
}

variable "create_alarm_topic" {
  description = "Create the SNS topic <prefix>-alarms as alarm action (encrypted only with kms_key_arn: CloudWatch cannot use aws/sns)."
  type        = bool
  default     = false
}

variable "alarm_topic_arn" {
  description = "Existing SNS topic ARN for alarm actions when create_alarm_topic is false; null for alarms without actions."
  type        = string
  default     = null
}

variable "alarm_email_addresses" {
  description = "Email addresses subscribed to the created alarm topic."
  type        = list(string)
  default     = []
}

variable "iterator_age_threshold_ms" {
  description = "Alarm when the notification stream's oldest unread record is older than this (ms)."
  type        = number
  default     = 600000

  validation {
    condition     = var.iterator_age_threshold_ms >= 1000
    error_message = "iterator_age_threshold_ms must be at least 1000."
  }
}

variable "alarm_period_seconds" {
  description = "Period of the alarms' metrics (a multiple of 60 seconds)."
  type        = number
  default     = 300

  validation {
    condition     = var.alarm_period_seconds >= 60 && var.alarm_period_seconds % 60 == 0
    error_message = "alarm_period_seconds must be a multiple of 60."
  }
}

variable "create_recorder" {
  description = "Record every workflow execution (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED) and every granule attempt in the status store <prefix>-executions from Step Functions' own status-change events (modules/recorder). Without it the store is still created and written by the workflow's StartStatus/StopStatus (RUNNING, then SUCCEEDED or FAILED), but executions aborted, timed out or failed before their first task are not recorded; the cnm-ingest CLI reads the store either way."
  type        = bool
  default     = true
}

variable "reconcile" {
  description = "Scheduled reconciliation (modules/reconcile; needs create_recorder): an EventBridge schedule runs the reconcile function over a trailing window and publishes the metrics Unanswered, Stuck and Lost per collection, with alarms (when create_alarms). enabled; schedule_expression (rate() or cron()); window_seconds (300-604800, within the stream's retention); settle_seconds (0-3600: the window ends this long before each run); stuck_after_seconds (60-31536000: running longer is Stuck); alarm_threshold (records, 0 = any); alarm_collections (collection ids name__version with alarms of their own)."
  type = object({
    enabled             = optional(bool, true)
    schedule_expression = optional(string, "rate(1 hour)")
    window_seconds      = optional(number, 86400)
    settle_seconds      = optional(number, 900)
    stuck_after_seconds = optional(number, 7200)
    alarm_threshold     = optional(number, 0)
    alarm_collections   = optional(list(string), [])
  })
  default  = {}
  nullable = false
}

variable "workflow_offload_bytes" {
  description = "WORKFLOW_OFFLOAD_BYTES of the consumers and the workflow tasks: above this size the workflow message's CNM, granule list and response move to the payload bucket (Step Functions allows 256 KiB per state)."
  type        = number
  default     = 204800

  validation {
    condition     = var.workflow_offload_bytes >= 4096 && var.workflow_offload_bytes <= 229376 && floor(var.workflow_offload_bytes) == var.workflow_offload_bytes
    error_message = "workflow_offload_bytes must be a whole number between 4096 and 229376 (224 KiB)."
  }
}

variable "alarm_state_machine_arns" {
  description = "Further state machines that rules start (a DAAC's own workflows), by a static key, to alarm on failed, timed-out and aborted executions like the CNM workflow."
  type        = map(string)
  default     = {}
}

variable "start_concurrency" {
  description = "Concurrent StartExecution calls per message consumer invocation (modules/consumer start_concurrency)."
  type        = number
  default     = 64

  validation {
    condition     = var.start_concurrency >= 1 && var.start_concurrency <= 256 && floor(var.start_concurrency) == var.start_concurrency
    error_message = "start_concurrency must be a whole number between 1 and 256."
  }
}

variable "start_rate_limit" {
  description = "Cap on StartExecution calls per second per consumer instance; 0 = no cap. Set it where Step Functions throttling is expected to be sustained (see modules/consumer)."
  type        = number
  default     = 0

  validation {
    condition     = var.start_rate_limit >= 0 && var.start_rate_limit <= 10000
    error_message = "start_rate_limit must be between 0 (no cap) and 10000."
  }
}

variable "start_rate_burst" {
  description = "Token bucket size for start_rate_limit; 0 = one second's worth."
  type        = number
  default     = 0

  validation {
    condition     = var.start_rate_burst >= 0 && var.start_rate_burst <= 10000
    error_message = "start_rate_burst must be between 0 and 10000."
  }
}

variable "start_max_attempts" {
  description = "Tries of one StartExecution while throttled, within one invocation of the message or fallback consumer (after botocore's own retries of each try), before the record is given back: a batch item failure for the message consumer, a retried invocation for the fallback consumer. Lower it to hand throttled records back to the event source mapping sooner."
  type        = number
  default     = 10

  validation {
    condition     = var.start_max_attempts >= 1 && var.start_max_attempts <= 100 && floor(var.start_max_attempts) == var.start_max_attempts
    error_message = "start_max_attempts must be a whole number between 1 and 100."
  }
}

# --- CNM responses: destinations and distribution URIs (issue 13) ---

variable "response_destinations" {
  description = "More Kinesis stream ARNs and SNS topic ARNs that each receive every CNM response (modules/workflow response_destinations); SNS messages carry CNM_RESPONSE_STATUS, COLLECTION, DATA_VERSION, dataProcessingType and trace attributes."
  type        = list(string)
  default     = []
}

variable "response_destinations_kms_key_arns" {
  description = "Customer managed KMS keys of the response_destinations, if any."
  type        = list(string)
  default     = []
}

variable "distribution_endpoint" {
  description = "Optional https base URL of the DAAC's distribution; SUCCESS responses then give files as <distribution_endpoint>/<bucket>/<key>."
  type        = string
  default     = null
}
