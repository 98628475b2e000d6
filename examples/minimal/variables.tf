variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-west-2"
}

variable "prefix" {
  description = "Name prefix of every resource."
  type        = string
  default     = "cnm-minimal"
}

variable "staging_bucket_name" {
  description = "Existing bucket the workflow stages granule files into."
  type        = string
  default     = "cnm-minimal-staging"
}
