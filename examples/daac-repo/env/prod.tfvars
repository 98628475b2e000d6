# prod: terraform plan -var-file=env/prod.tfvars (ci/check.sh prod)
environment = "prod"
account_id  = "333333333333"
prefix      = "lpdaac-cnm-prod"

staging_bucket_name   = "lpdaac-prod-staging"
provider_bucket_names = ["lpdaac-prod-provider-inbox"]
alarm_topic_name      = "lpdaac-prod-ops-alarms"
kms_key_arn           = "arn:aws:kms:us-west-2:333333333333:key/00000000-0000-4000-8000-000000000000"
log_retention_days    = 365
tags = {
  Project = "lpdaac-cnm"
  Owner   = "lpdaac-ops"
}
