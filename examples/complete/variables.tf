variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-west-2"
}

variable "prefix" {
  description = "Name prefix of every resource."
  type        = string
  default     = "cnm-complete"
}

variable "provider_bucket_name" {
  description = "Bucket the providers stage their granules in (read by the workflow)."
  type        = string
  default     = "cnm-complete-provider-outbox"
}

variable "alarm_email_addresses" {
  description = "Email addresses receiving the pipeline's alarms."
  type        = list(string)
  default     = []
}

variable "vpc_id" {
  description = "VPC the functions run in (in an NGAP account, the application VPC NGAP provisions)."
  type        = string
  default     = "vpc-0a1b2c3d4e5f60718"
}

variable "subnet_ids" {
  description = "Private subnets of vpc_id the functions run in; they must reach the AWS APIs (VPC endpoints or NAT)."
  type        = list(string)
  default     = ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"]
}

variable "permissions_boundary_name" {
  description = "Name of the IAM policy every role must carry as permissions boundary (NGAP: NGAPShRoleBoundary)."
  type        = string
  default     = "NGAPShRoleBoundary"
}

variable "role_path" {
  description = "IAM path of the pipeline's roles."
  type        = string
  default     = "/cnm-ingest/"
}
