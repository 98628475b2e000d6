# uat: terraform plan -var-file=env/uat.tfvars (ci/check.sh uat)
environment = "uat"
account_id  = "222222222222"
prefix      = "lpdaac-cnm-uat"

staging_bucket_name   = "lpdaac-uat-staging"
provider_bucket_names = ["lpdaac-uat-provider-inbox"]
alarm_topic_name      = "lpdaac-uat-ops-alarms"

tags = {
  Project = "lpdaac-cnm"
  Owner   = "lpdaac-ops"
}
