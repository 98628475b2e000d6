# The CNM workflow: a Standard state machine
#   StartStatus -> TranslateMessage -> SyncGranule -> [extra states] -> CnmResponse [-> ParkResponse] -> StopStatus
# with its five task functions (one least-privilege role each) and the state machine's log group. The status
# store (modules/executions) and the idempotency table are inputs: StartStatus/StopStatus write the store through
# cnm_ingest.executions, SyncGranule keeps its commit order there, CnmResponse its once-markers in the other.

data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition

  staging_bucket_arn = "arn:${local.partition}:s3:::${var.staging_bucket_name}"

  # The role SyncGranule reads providers' files and secrets with (cnm_ingest.transfer.provider_access); its ARN is
  # written out so SyncGranule's policy and the role's trust policy do not depend on each other. The account
  # is the status store's (no STS call: a CI plan with skip_requesting_account_id needs none).
  provider_read_role_name = "${var.prefix}-provider-read"
  provider_read_role_arn  = "arn:${local.partition}:iam::${split(":", var.executions_table_arn)[4]}:role${var.role_path}${local.provider_read_role_name}"

  # Task key (lambda_src/handlers/<key>.py, a key of var.functions) -> state name.
  states = {
    start_status      = "StartStatus"
    translate_message = "TranslateMessage"
    sync_granule      = "SyncGranule"
    cnm_response      = "CnmResponse"
    stop_status       = "StopStatus"
  }

  # What each task gets from this module on top of its function object: the
  # environment naming this module's resources and inputs, its permissions and
  # the customer keys of what it touches.
  # Every task reads (and may rewrite) the workflow message, whose large parts live in the payload bucket.
  # CONTRACT_VALIDATION only when the contract is checked: the default leaves the functions as they were.
  common_environment = merge(
    {
      PAYLOAD_BUCKET         = var.payload_bucket_name
      WORKFLOW_OFFLOAD_BYTES = tostring(var.workflow_offload_bytes)
    },
    var.contract_validation == "off" ? {} : { CONTRACT_VALIDATION = var.contract_validation },
  )
  environment = {
    start_status      = { EXECUTIONS_TABLE = var.executions_table_name }
    translate_message = {}
    sync_granule = {
      EXECUTIONS_TABLE             = var.executions_table_name
      PROVIDER_READ_ROLE_ARN       = local.provider_read_role_arn
      SYNC_CONCURRENCY             = tostring(var.sync_concurrency)
      SYNC_DEADLINE_MARGIN_SECONDS = tostring(var.sync_deadline_margin_seconds)
      SYNC_MAX_INVOCATIONS         = tostring(var.sync_max_invocations)
    }
    cnm_response = merge(
      { RESPONSE_STREAM_ARN = var.response_stream_arn, IDEMPOTENCY_TABLE = var.idempotency_table_name, DLQ_URL = var.dlq_url },
      var.response_topic_arn == null ? {} : { RESPONSE_TOPIC_ARN = var.response_topic_arn },
      length(var.response_destinations) == 0 ? {} : { RESPONSE_DESTINATIONS = jsonencode(var.response_destinations) },
      var.distribution_endpoint == null ? {} : { DISTRIBUTION_ENDPOINT = var.distribution_endpoint },
    )
    stop_status = { EXECUTIONS_TABLE = var.executions_table_name }
  }
  policies = {
    start_status      = data.aws_iam_policy_document.status.json
    translate_message = data.aws_iam_policy_document.payload_write.json
    sync_granule      = data.aws_iam_policy_document.sync_granule.json
    cnm_response      = data.aws_iam_policy_document.cnm_response.json
    stop_status       = data.aws_iam_policy_document.status.json
  }
  payload_kms_key_arns = compact([var.payload_bucket_kms_key_arn])
  additional_kms_key_arns = {
    start_status      = local.payload_kms_key_arns
    translate_message = local.payload_kms_key_arns
    sync_granule      = compact(concat([var.staging_bucket_kms_key_arn], local.payload_kms_key_arns))
    cnm_response = compact(concat([var.response_stream_kms_key_arn, var.response_topic_kms_key_arn, var.dlq_kms_key_arn],
    var.response_destinations_kms_key_arns, local.payload_kms_key_arns))
    stop_status = local.payload_kms_key_arns
  }

  placement_bucket_arns = [for name in distinct(var.placement_bucket_names) : "arn:${local.partition}:s3:::${name}" if name != var.staging_bucket_name]

  # response_destinations: split by service for least-privilege statements.
  response_destination_streams = [for arn in var.response_destinations : arn if split(":", arn)[2] == "kinesis"]
  response_topics = distinct(concat(var.response_topic_arn == null ? [] : [var.response_topic_arn],
  [for arn in var.response_destinations : arn if split(":", arn)[2] == "sns"]))

  # extra_states: the object's members are spliced into "States" (see templates/).
  extra_states          = var.extra_states == "" ? {} : jsondecode(var.extra_states)
  extra_states_json     = jsonencode(local.extra_states)
  extra_states_fragment = length(local.extra_states) == 0 ? "" : "${substr(local.extra_states_json, 1, length(local.extra_states_json) - 2)},"

  definition = templatefile("${path.module}/templates/cnm_workflow.asl.json.tftpl", {
    start_status_arn                = module.function["start_status"].function_arn
    translate_message_arn           = module.function["translate_message"].function_arn
    sync_granule_arn                = module.function["sync_granule"].function_arn
    cnm_response_arn                = module.function["cnm_response"].function_arn
    stop_status_arn                 = module.function["stop_status"].function_arn
    sync_retry_interval_seconds     = var.sync_retry_interval_seconds
    sync_retry_max_attempts         = var.sync_retry_max_attempts
    sync_max_invocations            = var.sync_max_invocations
    response_retry_interval_seconds = var.response_retry_interval_seconds
    response_retry_max_attempts     = var.response_retry_max_attempts
    sync_next                       = length(local.extra_states) == 0 ? "CnmResponse" : var.extra_states_start_at
    extra_states                    = local.extra_states_fragment
  })
}

################################################################################
# Task functions: one role each, with only what the task touches
################################################################################

# The workflow message's large parts (cnm_ingest.workflow.payload): every task reads them,
# the tasks that rewrite the message may store new ones.
data "aws_iam_policy_document" "payload_read" {
  statement {
    sid       = "ReadWorkflowPayloads"
    actions   = ["s3:GetObject"]
    resources = [var.workflow_payload_objects_arn]
  }
}

data "aws_iam_policy_document" "payload_write" {
  source_policy_documents = [data.aws_iam_policy_document.payload_read.json]

  statement {
    sid       = "StoreWorkflowPayloads"
    actions   = ["s3:PutObject"]
    resources = [var.workflow_payload_objects_arn]
  }
}

data "aws_iam_policy_document" "sync_granule" {
  source_policy_documents = [data.aws_iam_policy_document.payload_write.json]

  statement {
    # Providers' files and secrets are read only under the provider-read role, narrowed to one
    # provider by a session policy on each AssumeRole (cnm_ingest.transfer.provider_access).
    sid       = "AssumeProviderReadRole"
    actions   = ["sts:AssumeRole"]
    resources = [local.provider_read_role_arn]
  }

  statement {
    sid       = "StagingObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${local.staging_bucket_arn}/*"]
  }

  statement {
    # Without ListBucket a missing staged object reads as 403 instead of 404.
    sid       = "ListStagingBucket"
    actions   = ["s3:ListBucket"]
    resources = concat([local.staging_bucket_arn], local.placement_bucket_arns)
  }

  dynamic "statement" {
    for_each = length(local.placement_bucket_arns) > 0 ? [1] : []

    content {
      sid       = "PlacementObjects"
      actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
      resources = [for arn in local.placement_bucket_arns : "${arn}/*"]
    }
  }

  statement {
    # The commit order of concurrent executions of a granule (cnm_ingest.transfer.commit_order): one item per granule.
    sid       = "StagingOrder"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [var.executions_table_arn]

    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["STAGING#*"]
    }
  }
}

################################################################################
# Provider-read role: what SyncGranule reads providers' files and secrets with
################################################################################

data "aws_iam_policy_document" "provider_read_assume" {
  statement {
    sid     = "SyncGranuleAssumes"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = [module.function["sync_granule"].role_arn]
    }
  }
}

resource "aws_iam_role" "provider_read" {
  name                 = local.provider_read_role_name
  path                 = var.role_path
  permissions_boundary = var.permissions_boundary_arn
  description          = "Reads the ${var.prefix} providers' files and secrets for SyncGranule; each session is narrowed to one provider by a session policy"
  assume_role_policy   = data.aws_iam_policy_document.provider_read_assume.json
  max_session_duration = 3600

  tags = var.tags
}

# The union of what any provider may be read with; each session gets only one provider's part.
data "aws_iam_policy_document" "provider_read" {
  dynamic "statement" {
    for_each = length(var.provider_bucket_arns) > 0 ? [1] : []

    content {
      sid       = "ReadProviderObjects"
      actions   = ["s3:GetObject"]
      resources = [for arn in var.provider_bucket_arns : "${arn}/*"]
    }
  }

  dynamic "statement" {
    # With ListBucket a missing file reads as 404 (FileNotFound), not 403; sessions narrow it with s3:prefix.
    for_each = length(var.provider_bucket_arns) > 0 ? [1] : []

    content {
      sid       = "ListProviderBuckets"
      actions   = ["s3:ListBucket"]
      resources = var.provider_bucket_arns
    }
  }

  statement {
    # A server-side copy reads the source and writes the destination with one set of credentials:
    # the provider's file is copied into the staging buckets' temporary area only.
    sid       = "WriteStagingTemporaryArea"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [for arn in concat([local.staging_bucket_arn], local.placement_bucket_arns) : "${arn}/${var.staging_temp_key_prefix}*"]
  }

  dynamic "statement" {
    for_each = length(var.provider_secret_arns) > 0 ? [1] : []

    content {
      sid       = "ReadProviderCredentials"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = var.provider_secret_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.provider_kms_key_arns) > 0 ? [1] : []

    content {
      sid       = "DecryptProviderObjects"
      actions   = ["kms:Decrypt"]
      resources = var.provider_kms_key_arns
    }
  }

  dynamic "statement" {
    for_each = var.staging_bucket_kms_key_arn == null ? [] : [1]

    content {
      sid       = "EncryptTemporaryCopies"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.staging_bucket_kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "provider_read" {
  name   = "${local.provider_read_role_name}-permissions"
  role   = aws_iam_role.provider_read.id
  policy = data.aws_iam_policy_document.provider_read.json
}

data "aws_iam_policy_document" "cnm_response" {
  source_policy_documents = [data.aws_iam_policy_document.payload_write.json]

  statement {
    sid       = "PutResponse"
    actions   = ["kinesis:PutRecord"]
    resources = distinct(concat([var.response_stream_arn], local.response_destination_streams))
  }

  statement {
    # Powertools idempotency records (pin, put, publish and park once) in the stack's idempotency table: its own
    # records only (ids "cnm-response.<effect>#...", cnm_ingest.delivery.KEY_PREFIX), not the consumers'.
    sid       = "IdempotencyRecords"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
    resources = [var.idempotency_table_arn]

    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["cnm-response.*"]
    }
  }

  statement {
    sid       = "ParkUndeliverableResponses"
    actions   = ["sqs:SendMessage"]
    resources = [var.dlq_arn]
  }

  statement {
    sid       = "StoreLargeParkedResponses"
    actions   = ["s3:PutObject"]
    resources = [var.response_payload_objects_arn]
  }

  dynamic "statement" {
    for_each = length(local.response_topics) == 0 ? [] : [local.response_topics]

    content {
      sid       = "PublishResponse"
      actions   = ["sns:Publish"]
      resources = statement.value
    }
  }
}

data "aws_iam_policy_document" "status" {
  source_policy_documents = [data.aws_iam_policy_document.payload_read.json]

  statement {
    # cnm_ingest.executions' conditional UpdateItems, on execution and granule items only.
    sid       = "WriteStatus"
    actions   = ["dynamodb:UpdateItem"]
    resources = [var.executions_table_arn]

    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["EXECUTION#*", "GRANULE#*"]
    }
  }
}

module "function" {
  source   = "../lambda_function"
  for_each = local.states

  function = merge(var.functions[each.key], {
    environment_variables   = merge(var.functions[each.key].environment_variables, local.common_environment, local.environment[each.key])
    additional_kms_key_arns = distinct(concat(var.functions[each.key].additional_kms_key_arns, local.additional_kms_key_arns[each.key]))
  })
  policy_json = local.policies[each.key]
}

################################################################################
# State machine
################################################################################

resource "aws_cloudwatch_log_group" "state_machine" {
  #checkov:skip=CKV_AWS_338:retention is the log_retention_days variable (default 30, validated to CloudWatch's allowed values); a year is a DAAC policy choice
  name              = "/aws/vendedlogs/states/${var.prefix}-cnm-workflow"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

data "aws_iam_policy_document" "sfn_assume" {
  statement {
    sid     = "StatesAssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "state_machine" {
  name                 = "${var.prefix}-cnm-workflow"
  path                 = var.role_path
  permissions_boundary = var.permissions_boundary_arn
  description          = "Role of the ${var.prefix} CNM workflow state machine"
  assume_role_policy   = data.aws_iam_policy_document.sfn_assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "state_machine" {
  source_policy_documents = var.extra_states_policy_json == null ? [] : [var.extra_states_policy_json]

  statement {
    sid       = "InvokeOwnTasks"
    actions   = ["lambda:InvokeFunction"]
    resources = flatten([for f in module.function : [f.function_arn, "${f.function_arn}:*"]])
  }

  statement {
    # CloudWatch Logs log delivery for Step Functions has no resource-level
    # permissions: AWS requires Resource "*" for these actions.
    sid = "LogDelivery"
    actions = [
      "logs:CreateLogDelivery",
      "logs:GetLogDelivery",
      "logs:UpdateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:DescribeResourcePolicies",
      "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }

  dynamic "statement" {
    # X-Ray has no resource-level permissions either.
    for_each = var.tracing_enabled ? [1] : []

    content {
      sid       = "XRayWrite"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "state_machine" {
  name   = "${var.prefix}-cnm-workflow-permissions"
  role   = aws_iam_role.state_machine.id
  policy = data.aws_iam_policy_document.state_machine.json
}

resource "aws_sfn_state_machine" "this" {
  #checkov:skip=CKV_AWS_284:X-Ray tracing is optional (tracing_enabled, default false to avoid X-Ray cost); examples/complete turns it on
  #checkov:skip=CKV_AWS_285:include_execution_data defaults to false because workflow messages carry full CNMs and file lists; the level is the state_machine_log_level variable
  name     = "${var.prefix}-cnm-workflow"
  type     = "STANDARD"
  role_arn = aws_iam_role.state_machine.arn

  # Round-trip through jsondecode so a bad extra_states fails at plan time.
  definition = jsonencode(jsondecode(local.definition))

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    include_execution_data = var.include_execution_data
    level                  = var.state_machine_log_level
  }

  tracing_configuration {
    enabled = var.tracing_enabled
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.state_machine]

  lifecycle {
    precondition {
      condition     = length(local.extra_states) == 0 || (var.extra_states_start_at != null && contains(keys(local.extra_states), coalesce(var.extra_states_start_at, "-")))
      error_message = "extra_states_start_at must name one of the states in extra_states."
    }

    precondition {
      condition     = length(local.extra_states) == 0 || anytrue([for s in values(local.extra_states) : try(s.Next, "") == "CnmResponse"])
      error_message = "The last of extra_states must have \"Next\": \"CnmResponse\"."
    }

    precondition {
      # SyncGranule stops when less than the margin is left: with no more than half its time kept, every invocation has time for files
      condition     = var.sync_deadline_margin_seconds * 2 <= var.functions["sync_granule"].timeout
      error_message = "sync_deadline_margin_seconds must be at most half of the sync_granule function's timeout."
    }
  }
}
