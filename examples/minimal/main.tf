provider "aws" {
  region = var.region
}

module "cnm_ingest" {
  source = "../../"

  prefix              = var.prefix
  staging_bucket_name = var.staging_bucket_name
}
