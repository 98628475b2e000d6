# sit: terraform plan -var-file=env/sit.tfvars (ci/check.sh sit)
environment = "sit"
account_id  = "111111111111"
prefix      = "lpdaac-cnm-sit"

staging_bucket_name   = "lpdaac-sit-staging"
provider_bucket_names = ["lpdaac-sit-provider-inbox"]
alarm_topic_name      = "lpdaac-sit-ops-alarms"

tags = {
  Project = "lpdaac-cnm"
  Owner   = "lpdaac-ops"
}
