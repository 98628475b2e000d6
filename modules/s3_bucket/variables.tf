variable "bucket" {
  description = "Name of the bucket."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket))
    error_message = "bucket must be a valid S3 bucket name (3-63 lowercase letters, digits, '.' and '-')."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key ARN for SSE-KMS; null uses the AWS managed key aws/s3."
  type        = string
  default     = null
}

variable "versioning_enabled" {
  description = "Enable object versioning (noncurrent versions expire with expiration_days)."
  type        = bool
  default     = true
}

variable "expiration_days" {
  description = "Objects (and noncurrent versions) expire after this many days; null keeps them forever."
  type        = number
  default     = null

  validation {
    condition     = var.expiration_days == null || try(var.expiration_days >= 1 && var.expiration_days <= 36500, false)
    error_message = "expiration_days must be null or between 1 and 36500."
  }
}

variable "force_destroy" {
  description = "Allow Terraform to destroy the bucket while it still holds objects (loses them)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for the bucket."
  type        = map(string)
  default     = {}
}
