variable "prefix" {
  description = "Name prefix: the tables are <prefix>-rules, <prefix>-collections and <prefix>-providers."
  type        = string
}

variable "rules" {
  description = "Ingest rules, each with its workflow (state machine) ARN already resolved. Written as items of the rules table."
  type = list(object({
    name         = string
    collection   = object({ name = string, version = optional(string, "") })
    provider     = string
    workflow_arn = string
    state        = optional(string, "ENABLED")
    meta         = optional(map(any), {})
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
}

variable "collections" {
  description = "Collections (name + version) and their ingest configuration. Written as items of the collections table."
  type = list(object({
    name                  = string
    version               = string
    url_path              = optional(string, "file-staging/{stack}/{collection}")
    duplicate_handling    = optional(string, "error")
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
    condition     = length(distinct([for c in var.collections : "${c.name}___${c.version}"])) == length(var.collections)
    error_message = "Collections must be unique by name and version."
  }
}

variable "providers_config" {
  description = "Data providers (id, protocol, host). Written as items of the providers table."
  type = list(object({
    id       = string
    protocol = optional(string, "s3")
    host     = string
    meta     = optional(map(any), {})
    # http/https sources (issue 13): port, Secrets Manager secret {"username", "password"}, connections per process
    port                   = optional(number)
    credentials_secret_arn = optional(string)
    globalConnectionLimit  = optional(number)
  }))
  default = []

  validation {
    condition     = length(distinct([for p in var.providers_config : p.id])) == length(var.providers_config)
    error_message = "Provider ids must be unique."
  }
}

variable "deletion_protection_enabled" {
  description = "Protect the tables from deletion."
  type        = bool
  default     = true
}

variable "point_in_time_recovery_enabled" {
  description = "Enable point-in-time recovery on the tables."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Customer managed KMS key ARN for server-side encryption; null uses the AWS managed key aws/dynamodb."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for the tables."
  type        = map(string)
  default     = {}
}
