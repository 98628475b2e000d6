variable "prefix" {
  description = "Name prefix: the table is <prefix>-executions unless table_name is given."
  type        = string
}

variable "table_name" {
  description = "Name of the status store; null for <prefix>-executions."
  type        = string
  default     = null

  validation {
    condition     = var.table_name == null || can(regex("^[A-Za-z0-9_.-]{3,255}$", coalesce(var.table_name, "x")))
    error_message = "table_name must be null or 3-255 characters of A-Z, a-z, 0-9, '_', '-' and '.'."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key of the table's server-side encryption; null for the AWS managed key."
  type        = string
  default     = null
}

variable "deletion_protection_enabled" {
  description = "Deletion protection of the table (the execution and granule history)."
  type        = bool
  default     = true
}

variable "point_in_time_recovery_enabled" {
  description = "Point-in-time recovery of the table."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags of the table."
  type        = map(string)
  default     = {}
}
