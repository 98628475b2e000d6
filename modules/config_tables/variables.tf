variable "prefix" {
  description = "Name prefix: the tables are <prefix>-rules, <prefix>-collections and <prefix>-providers."
  type        = string
}

variable "rules" {
  description = "(Validated by the root module.) Ingest rules, each with its workflow (state machine) ARN already resolved. Written as items of the rules table."
  type = list(object({
    name                  = string
    collection            = object({ name = string, version = optional(string, "") })
    provider              = optional(string, "")
    workflow_arn          = string
    state                 = optional(string, "ENABLED")
    meta                  = optional(map(any), {})
    stream_arn            = optional(string, "")
    execution_name_prefix = optional(string, "")
  }))
  default = []
}

variable "collections" {
  description = "(Validated by the root module.) Collections (name + version) and their ingest configuration. Written as items of the collections table."
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
}

variable "providers_config" {
  description = "(Validated by the root module.) Data providers (id, protocol, host). Written as items of the providers table."
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
