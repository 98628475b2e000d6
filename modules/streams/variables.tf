variable "name" {
  description = "Name of the Kinesis data stream."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,128}$", var.name))
    error_message = "name must be 1-128 characters of letters, digits, '_', '.' and '-'."
  }
}

variable "stream_mode" {
  description = "(Validated by the root module.) Capacity mode: \"ON_DEMAND\" or \"PROVISIONED\"."
  type        = string
  default     = "ON_DEMAND"
}

variable "shard_count" {
  description = "(Validated by the root module.) Number of shards when stream_mode is PROVISIONED (ignored for ON_DEMAND)."
  type        = number
  default     = 1
}

variable "retention_period" {
  description = "(Validated by the root module.) Hours records stay readable in the stream (24-8760). Failed batches can be re-read (hydrated) only within this window."
  type        = number
  default     = 168
}

variable "kms_key_arn" {
  description = "Customer managed KMS key ARN for server-side encryption; null uses the AWS managed key alias/aws/kinesis (encryption at rest is always on)."
  type        = string
  default     = null
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
