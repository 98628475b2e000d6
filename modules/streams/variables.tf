variable "name" {
  description = "Name of the Kinesis data stream."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,128}$", var.name))
    error_message = "name must be 1-128 characters of letters, digits, '_', '.' and '-'."
  }
}

variable "stream_mode" {
  description = "Capacity mode: \"ON_DEMAND\" or \"PROVISIONED\"."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.stream_mode)
    error_message = "stream_mode must be \"ON_DEMAND\" or \"PROVISIONED\"."
  }
}

variable "shard_count" {
  description = "Number of shards when stream_mode is PROVISIONED (ignored for ON_DEMAND)."
  type        = number
  default     = 1

  validation {
    condition     = var.shard_count >= 1 && var.shard_count <= 10000 && floor(var.shard_count) == var.shard_count
    error_message = "shard_count must be a whole number between 1 and 10000."
  }
}

variable "retention_period" {
  description = "Hours records stay readable in the stream (24-8760). Failed batches can be re-read (hydrated) only within this window."
  type        = number
  default     = 168

  validation {
    condition     = var.retention_period >= 24 && var.retention_period <= 8760
    error_message = "retention_period must be between 24 and 8760 hours."
  }
}

variable "kms_key_id" {
  description = "KMS key (ARN, ID or alias) for server-side encryption; the AWS managed key alias/aws/kinesis by default."
  type        = string
  default     = "alias/aws/kinesis"

  validation {
    condition     = length(var.kms_key_id) > 0
    error_message = "kms_key_id must not be empty (encryption at rest is always on)."
  }
}

variable "shard_level_metrics" {
  description = "Enhanced shard-level CloudWatch metrics to enable (e.g. IncomingBytes, IteratorAgeMilliseconds)."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([for m in var.shard_level_metrics : contains([
      "IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords",
      "WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded",
      "IteratorAgeMilliseconds", "ALL",
    ], m)])
    error_message = "shard_level_metrics holds unknown metric names."
  }
}

variable "enforce_consumer_deletion" {
  description = "Deregister stream consumers (enhanced fan-out) when the stream is destroyed."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for the stream."
  type        = map(string)
  default     = {}
}
