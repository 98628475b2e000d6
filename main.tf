# cnm-ingest root module: wires the parts of the CNM ingest pipeline.
#
#   notification stream -> message consumer -> workflow -> response stream
#                            |-> fallback topic -> fallback consumer -> DLQ (kinesisFailure)
#                            |-> (batch given up) failed-batch topic -> hydrate -> DLQ
#   inbound / outbound loggers on both streams; config tables; alarms.
#
# The root is split by concern, one file each, in dependency order: every file
# reads only what the files before it declare (README "Extending the Terraform").
#
#   main.tf           this index, the functions' network placement (NGAP)
#   streams.tf        notification and response streams (created or existing)
#   packages.tf       build/manifest.json, the dependency layer, and the one
#                     `function` object per Lambda function (defaults merged
#                     with var.lambda_function_settings)
#   dead_letter.tf    modules/dead_letter: DLQ, fallback and failed-batch topics,
#                     payload bucket; reads no other module
#   stores.tf         the status store (modules/executions) and the idempotency
#                     table
#   workflow.tf       the Step Functions workflow and its task functions
#   ingest.tf         config tables, message consumer, fallback consumer,
#                     hydrate; then the DLQ policy naming every writer
#   observability.tf  stream loggers, alarms and scheduled reconciliation
#   dashboard.tf      the CloudWatch dashboard (reads what every file above declares)
#   moved.tf          where resources of earlier versions moved to

################################################################################
# Network placement of the functions (NGAP: functions in a VPC)
################################################################################

locals {
  create_lambda_security_group = var.vpc_id != null && length(var.lambda_security_group_ids) == 0
  lambda_security_group_ids    = local.create_lambda_security_group ? [aws_security_group.lambda[0].id] : var.lambda_security_group_ids
}

resource "aws_security_group" "lambda" {
  #checkov:skip=CKV2_AWS_5:attached to every function's vpc_config through local.lambda_security_group_ids (packages.tf)
  count = local.create_lambda_security_group ? 1 : 0

  name        = "${var.prefix}-lambda"
  description = "cnm-ingest Lambda functions: no inbound traffic; HTTPS out to AWS service endpoints and HTTPS providers"
  vpc_id      = var.vpc_id

  egress {
    description = "HTTPS to AWS service endpoints (VPC endpoints or NAT) and HTTPS providers"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = length(var.lambda_subnet_ids) > 0
      error_message = "vpc_id creates the functions' security group, which is of use only with lambda_subnet_ids."
    }
  }
}
