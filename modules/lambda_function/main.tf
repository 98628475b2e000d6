# Generic Lambda function: function + least-privilege role + explicit log group,
# with layers, environment, tracing, optional VPC placement, permissions
# boundary and role path, and asynchronous invocation (retries / on-failure
# queue) configuration. Every function of the pipeline is an instance of this
# module, configured by one `function` object built at the root.

data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  fn             = var.function
  log_group_name = "/aws/lambda/${local.fn.name}"
  kms_key_arns   = distinct(concat(local.fn.kms_key_arn == null ? [] : [local.fn.kms_key_arn], local.fn.additional_kms_key_arns))
  in_vpc         = length(local.fn.vpc_subnet_ids) > 0
  has_async_dest = var.create_async_event_config && var.async_on_failure_destination_arn != null

  # EC2 resources of the function's region, in any account: an identity policy grants nothing on
  # another account's network interfaces or security groups (EC2 has no resource policies), the
  # subnet and security group ids are named one by one, and a subnet shared to this account (RAM,
  # shared VPCs) has its owner's account in its ARN. No account id is needed, so no STS call.
  ec2_arn = "arn:${data.aws_partition.current.partition}:ec2:${data.aws_region.current.region}:*"
}

################################################################################
# Log group (created explicitly so that retention and encryption are ours)
################################################################################

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:retention is the log_retention_days variable (default 30, validated to CloudWatch's allowed values); a year is a DAAC policy choice
  name              = local.log_group_name
  retention_in_days = local.fn.log_retention_days
  kms_key_id        = local.fn.kms_key_arn

  tags = local.fn.tags
}

################################################################################
# IAM role
################################################################################

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = local.fn.name
  path                 = local.fn.role_path
  permissions_boundary = local.fn.permissions_boundary_arn
  description          = "Execution role of the Lambda function ${local.fn.name}"
  assume_role_policy   = data.aws_iam_policy_document.assume.json

  tags = local.fn.tags
}

data "aws_iam_policy_document" "this" {
  source_policy_documents = var.policy_json == null ? [] : [var.policy_json]

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    # X-Ray has no resource-level permissions: Resource "*" is unavoidable here.
    for_each = local.fn.tracing_enabled ? [1] : []

    content {
      sid       = "XRayWrite"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = length(local.kms_key_arns) > 0 ? [1] : []

    content {
      sid       = "UseCustomerKeys"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKey*", "kms:DescribeKey"]
      resources = local.kms_key_arns
    }
  }

  dynamic "statement" {
    # The network interfaces of a function in a VPC (what AWSLambdaVPCAccessExecutionRole grants,
    # scoped to the function's subnets and security groups). Describe* has no resource-level permissions.
    for_each = local.in_vpc ? [1] : []

    content {
      sid       = "VpcDescribeNetworkInterfaces"
      actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = local.in_vpc ? [1] : []

    content {
      sid     = "VpcManageNetworkInterfaces"
      actions = ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
      resources = concat(
        ["${local.ec2_arn}:network-interface/*"],
        [for id in local.fn.vpc_subnet_ids : "${local.ec2_arn}:subnet/${id}"],
        [for id in local.fn.vpc_security_group_ids : "${local.ec2_arn}:security-group/${id}"],
      )
    }
  }

  dynamic "statement" {
    for_each = local.has_async_dest ? [var.async_on_failure_destination_arn] : []

    content {
      sid       = "AsyncOnFailureDestination"
      actions   = ["sqs:SendMessage"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${local.fn.name}-permissions"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

################################################################################
# Function
################################################################################

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:dead_letter_config does not apply; asynchronously invoked functions (fallback consumer, hydrate) send failures to the DLQ through on-failure destinations (aws_lambda_function_event_invoke_config), the others are invoked synchronously (event source mappings, Step Functions)
  #checkov:skip=CKV_AWS_272:code signing is the DAAC's AWS Signer profile to own; packages are built reproducibly by build.py and pinned by source_code_hash
  #checkov:skip=CKV_AWS_117:a VPC is optional (lambda_subnet_ids); off by default because the functions reach only AWS APIs and a VPC adds NAT or endpoint cost
  function_name    = local.fn.name
  description      = local.fn.description
  role             = aws_iam_role.this.arn
  filename         = local.fn.package.filename
  source_code_hash = local.fn.package.source_code_hash
  handler          = local.fn.package.handler
  runtime          = local.fn.runtime
  architectures    = ["x86_64"] # build.py builds the packages and the layer for x86_64
  layers           = local.fn.layers
  timeout          = local.fn.timeout
  memory_size      = local.fn.memory_size
  kms_key_arn      = local.fn.kms_key_arn

  reserved_concurrent_executions = local.fn.reserved_concurrent_executions == null ? -1 : local.fn.reserved_concurrent_executions

  dynamic "environment" {
    for_each = length(local.fn.environment_variables) > 0 ? [1] : []

    content {
      variables = local.fn.environment_variables
    }
  }

  tracing_config {
    mode = local.fn.tracing_enabled ? "Active" : "PassThrough"
  }

  dynamic "vpc_config" {
    for_each = local.in_vpc ? [1] : []

    content {
      subnet_ids         = local.fn.vpc_subnet_ids
      security_group_ids = local.fn.vpc_security_group_ids
    }
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tags = local.fn.tags

  # The role's permissions (logs, destinations, network interfaces) must exist before the first invocation.
  depends_on = [aws_iam_role_policy.this, aws_cloudwatch_log_group.this]

  lifecycle {
    precondition {
      condition     = !local.in_vpc || length(local.fn.vpc_security_group_ids) > 0
      error_message = "A function in a VPC (vpc_subnet_ids) needs at least one security group."
    }
  }
}

resource "aws_lambda_function_event_invoke_config" "this" {
  count = var.create_async_event_config ? 1 : 0

  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = var.async_maximum_retry_attempts
  maximum_event_age_in_seconds = var.async_maximum_event_age_in_seconds

  dynamic "destination_config" {
    for_each = local.has_async_dest ? [var.async_on_failure_destination_arn] : []

    content {
      on_failure {
        destination = destination_config.value
      }
    }
  }
}
