variable "region" {
  description = "AWS region of the deployment."
  type        = string
  default     = "us-west-2"
}

variable "environment" {
  description = "Environment name: sit, uat or prod (env/<environment>.tfvars)."
  type        = string

  validation {
    condition     = contains(["sit", "uat", "prod"], var.environment)
    error_message = "environment must be sit, uat or prod."
  }
}

variable "account_id" {
  description = "The environment's AWS account id (12 digits): the permissions boundary's ARN and the module's bucket names."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}

variable "prefix" {
  description = "Name prefix of every resource of the pipeline."
  type        = string
}

variable "staging_bucket_name" {
  description = "The DAAC's existing staging bucket the workflow copies granules into."
  type        = string
}

variable "provider_bucket_names" {
  description = "Buckets the data providers deliver granules in (read access is granted on them)."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "The DAAC's customer managed KMS key for the pipeline's data and logs; null for AWS managed keys."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the pipeline's CloudWatch logs, in days."
  type        = number
  default     = 30
}

variable "vpc_name" {
  description = "Name tag of the NGAP application VPC."
  type        = string
  default     = "Application VPC"
}

variable "subnet_names" {
  description = "Name tags of the NGAP private subnets the functions run in."
  type        = list(string)
  default     = ["Private application us-west-2a subnet", "Private application us-west-2b subnet"]
}

variable "permissions_boundary_name" {
  description = "Name of the IAM policy every role is bounded by (NGAP: NGAPShRoleBoundary)."
  type        = string
  default     = "NGAPShRoleBoundary"
}

variable "alarm_topic_name" {
  description = "Name of the DAAC's existing SNS topic the pipeline's alarms notify."
  type        = string
}

variable "tags" {
  description = "The DAAC's tags for every resource (Deployment and Environment are added)."
  type        = map(string)
  default     = {}
}
