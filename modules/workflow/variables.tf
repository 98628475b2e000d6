################################################################################
# Naming and task functions
################################################################################

variable "prefix" {
  description = "Prefix (stack name, validated by the root module) of the workflow's resource names."
  type        = string
}

variable "functions" {
  description = "The task functions by key (start_status, translate_message, sync_granule, cnm_response, stop_status): the function objects the root module builds (packages.tf), each passed to modules/lambda_function, whose `function` variable declares the type."
  type        = map(any)

  validation {
    condition     = length(setsubtract(["start_status", "translate_message", "sync_granule", "cnm_response", "stop_status"], keys(var.functions))) == 0
    error_message = "functions must hold start_status, translate_message, sync_granule, cnm_response and stop_status."
  }
}

################################################################################
# What the workflow reads and writes
################################################################################

variable "executions_table_name" {
  description = "Name of the status store (modules/executions): StartStatus and StopStatus write it through cnm_ingest.executions, SyncGranule keeps each granule's commit order there (EXECUTIONS_TABLE)."
  type        = string
}

variable "executions_table_arn" {
  description = "ARN of the status store: StartStatus/StopStatus may update its EXECUTION# and GRANULE# items, SyncGranule its STAGING# items. Its account is also the provider-read role's."
  type        = string

  validation {
    condition     = can(regex("^arn:[^:]+:dynamodb:[^:]*:[0-9]*:table/[A-Za-z0-9_.-]+$", var.executions_table_arn))
    error_message = "executions_table_arn must be a DynamoDB table ARN."
  }
}

variable "idempotency_table_name" {
  description = "Name of the stack's idempotency table (hash key id, TTL attribute expiration): CnmResponse keeps its once-markers there (IDEMPOTENCY_TABLE)."
  type        = string
}

variable "idempotency_table_arn" {
  description = "ARN of the idempotency table: CnmResponse may read and write its own records there (ids cnm-response.*)."
  type        = string

  validation {
    condition     = can(regex("^arn:[^:]+:dynamodb:[^:]*:[0-9]*:table/[A-Za-z0-9_.-]+$", var.idempotency_table_arn))
    error_message = "idempotency_table_arn must be a DynamoDB table ARN."
  }
}

variable "response_stream_arn" {
  description = "ARN of the Kinesis stream CnmResponse writes CNM responses to."
  type        = string
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
  description = "Secrets Manager secrets holding providers' credentials: the provider-read role may read them (each session only its provider's, by session policy); SyncGranule's own role may not."
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
}

variable "staging_bucket_kms_key_arn" {
  description = "Customer managed KMS key of the staging bucket's default encryption, if any (SyncGranule may use it)."
  type        = string
  default     = null
}

variable "staging_temp_key_prefix" {
  description = "Key prefix of the staging buckets' temporary area (cnm_ingest.transfer.provider_access.TEMP_AREA, from the build manifest): the only keys the provider-read role may write."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+/$", var.staging_temp_key_prefix))
    error_message = "staging_temp_key_prefix must be one folder name followed by '/'."
  }
}

variable "provider_bucket_arns" {
  description = "ARNs of the provider buckets SyncGranule copies from: the provider-read role gets s3:GetObject on their objects and s3:ListBucket on them (each session only its provider's bucket and prefixes, by session policy); SyncGranule's own role gets neither."
  type        = list(string)
  default     = []
}

variable "provider_kms_key_arns" {
  description = "Customer managed KMS keys encrypting provider objects, if any (the provider-read role gets kms:Decrypt on them)."
  type        = list(string)
  default     = []
}

################################################################################
# Security, logging, tracing
################################################################################

variable "payload_bucket_name" {
  description = "Bucket holding the workflow message's large parts (PAYLOAD_BUCKET: the CNM, granule list and response above workflow_offload_bytes) and large parked responses; the bucket the consumers write to (modules/dead_letter)."
  type        = string
}

variable "payload_bucket_kms_key_arn" {
  description = "Customer managed KMS key of the payload bucket, if any (every task may use it)."
  type        = string
  default     = null
}

variable "workflow_payload_objects_arn" {
  description = "ARN pattern of the workflow message's large parts (<payload bucket ARN>/<cnm_ingest.workflow.payload.KEY_PREFIX>*): every task reads them, the tasks that rewrite the message store them."
  type        = string
}

variable "response_payload_objects_arn" {
  description = "ARN pattern of large parked responses (<payload bucket ARN>/<cnm_ingest.dlq.RESPONSE_KEY_PREFIX>*), which CnmResponse stores."
  type        = string
}

variable "workflow_offload_bytes" {
  description = "WORKFLOW_OFFLOAD_BYTES of every task, declared and validated by the root module's variable of the same name (the consumers get the same value)."
  type        = number
}

variable "dlq_url" {
  description = "URL of the dead-letter queue (modules/dead_letter) where ParkResponse parks a response that could not be delivered (DLQ_URL of CnmResponse)."
  type        = string
}

variable "dlq_arn" {
  description = "ARN of the dead-letter queue of dlq_url (CnmResponse gets sqs:SendMessage on it; the root's queue policy names CnmResponse's role)."
  type        = string
}

variable "dlq_kms_key_arn" {
  description = "Customer managed KMS key of the dead-letter queue, if any (CnmResponse gets kms:GenerateDataKey on it)."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the status table, the log groups and the functions' environment; null uses AWS managed keys. Its key policy must allow CloudWatch Logs (logs.<region>.amazonaws.com) to use it."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the functions' and the state machine's log groups, in days."
  type        = number
  default     = 30
}

variable "state_machine_log_level" {
  description = "Step Functions logging level of the state machine (ALL, ERROR, FATAL or OFF; validated by the root module)."
  type        = string
  default     = "ERROR"
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary of the state machine's role; null for none."
  type        = string
  default     = null
}

variable "role_path" {
  description = "IAM path of the state machine's role."
  type        = string
  default     = "/"
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
}

variable "sync_retry_max_attempts" {
  description = "Retries of SyncGranule after transient errors (0 disables retries)."
  type        = number
  default     = 3
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

variable "response_retry_interval_seconds" {
  description = "Seconds before CnmResponse's first retry after a transient error (doubled on each retry)."
  type        = number
  default     = 5
}

variable "response_retry_max_attempts" {
  description = "Retries of CnmResponse after transient errors (0 disables retries)."
  type        = number
  default     = 3
}

################################################################################
# Workflow contract
################################################################################

variable "contract_validation" {
  description = "CONTRACT_VALIDATION of every task: check each step's task event and input before it runs and its output after it against lambda_src/cnm_ingest/workflow/schemas. off: no check (the variable is not set); warn: log a violation and go on; enforce: a violation fails the step (ContractError, answered FAILURE)."
  type        = string
  default     = "off"
  nullable    = false

  validation {
    condition     = contains(["off", "warn", "enforce"], var.contract_validation)
    error_message = "contract_validation must be off, warn or enforce."
  }
}

################################################################################
# DAAC extension
################################################################################

variable "extra_states" {
  description = "JSON object of additional states run between SyncGranule and CnmResponse (\"\" for none). The chain starts at the state named by extra_states_start_at and its last state has \"Next\": \"CnmResponse\"; each Task should Catch States.ALL with ResultPath \"$.exception\" and Next \"CnmResponse\" so a failure is answered."
  type        = string
  default     = ""
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
