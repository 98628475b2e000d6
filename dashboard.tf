################################################################################
# Dashboard (CloudWatch): one page for an operator, issue 23
################################################################################
#
#   row 0  records in, per stream              | iterator age, per stream
#   row 1  executions started/succeeded/failed | the consumer: started, parked, retried
#   row 2  DLQ depth | DLQ oldest message age  | failure answers sent by the consumer
#   row 3  answers by status and error code (the response stream, via the outbound logger's log)
#   row 4  reconciliation: Unanswered | Stuck | Lost, per collection (modules/reconcile publishes them)
#
# Every name in the body is known at plan time (the state machine's ARN is built from its name), so
# `terraform plan` shows the whole body; tests/terraform/test_dashboard.py parses it.

data "aws_partition" "dashboard" {
  count = var.create_dashboard ? 1 : 0
}

data "aws_region" "dashboard" {
  count = var.create_dashboard ? 1 : 0
}

# Only when the caller does not give the account id (as modules/dead_letter): a plan without STS sets var.account_id.
data "aws_caller_identity" "dashboard" {
  count = var.create_dashboard && var.account_id == null ? 1 : 0
}

locals {
  dashboard_region = try(data.aws_region.dashboard[0].region, "")
  # The product's metrics namespace (Powertools: POWERTOOLS_METRICS_NAMESPACE of every function, packages.tf),
  # where the consumer's counts (dimension service) and the reconcile metrics (dimension collection) are.
  metrics_namespace = local.functions.message_consumer.environment_variables.POWERTOOLS_METRICS_NAMESPACE
  consumer_service  = local.functions.message_consumer.environment_variables.POWERTOOLS_SERVICE_NAME

  dashboard_streams = distinct(concat(
    [local.notification_stream_name],
    [for arn in local.rule_stream_arns : element(split("/", arn), 1)],
  ))
  # The module's own state machine by name (its ARN is unknown until apply), then the rules' other workflows.
  dashboard_state_machines = distinct(concat(
    [format(
      "arn:%s:states:%s:%s:stateMachine:%s",
      try(data.aws_partition.dashboard[0].partition, "aws"),
      local.dashboard_region,
      var.account_id != null ? var.account_id : try(data.aws_caller_identity.dashboard[0].account_id, ""),
      module.workflow.state_machine_name,
    )],
    [for r in var.rules : r.workflow_arn if r.workflow_arn != null],
  ))
  answers_log_group = contains(keys(module.logger), "outbound_logger") ? "/aws/lambda/${module.logger["outbound_logger"].function_name}" : null

  # one metric line: [namespace, metric, dimension, value, {label, stat}]
  consumer_metric = {
    for m in ["RecordsIn", "RecordsFailed", "RecordsRetried", "ExecutionsStarted", "ExecutionsAlreadyStarted", "RecordsParked", "RecordsToFallback", "FailureResponses", "FailureResponseErrors"] :
    m => [local.metrics_namespace, m, "service", local.consumer_service, { label = "consumer ${m}", stat = "Sum" }]
  }

  dashboard_widgets = concat(
    [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title = "Records in, per stream", region = local.dashboard_region, view = "timeSeries", period = 300
          metrics = concat(
            [for s in local.dashboard_streams : ["AWS/Kinesis", "IncomingRecords", "StreamName", s, { label = s, stat = "Sum" }]],
            [local.consumer_metric.RecordsIn],
          )
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title = "Iterator age, per stream (ms)", region = local.dashboard_region, view = "timeSeries", period = 300
          metrics = concat(
            [for s in local.dashboard_streams : ["AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", s, { label = s, stat = "Maximum" }]],
            [["AWS/Lambda", "IteratorAge", "FunctionName", module.consumer.function_name, { label = "message consumer", stat = "Maximum" }]],
          )
          annotations = { horizontal = [{ label = "alarm", value = var.iterator_age_threshold_ms }] }
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 12, height = 6
        properties = {
          title = "Executions started, succeeded, failed", region = local.dashboard_region, view = "timeSeries", period = 300
          metrics = [
            for pair in setproduct(local.dashboard_state_machines, ["ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"]) :
            ["AWS/States", pair[1], "StateMachineArn", pair[0], { label = "${element(split(":", pair[0]), 6)} ${pair[1]}", stat = "Sum" }]
          ]
        }
      },
      {
        type = "metric", x = 12, y = 6, width = 12, height = 6
        properties = {
          title   = "Message consumer: started, already started, parked, retried", region = local.dashboard_region, view = "timeSeries", period = 300
          metrics = [for m in ["ExecutionsStarted", "ExecutionsAlreadyStarted", "RecordsParked", "RecordsToFallback", "RecordsRetried", "RecordsFailed"] : local.consumer_metric[m]]
        }
      },
      {
        type = "metric", x = 0, y = 12, width = 8, height = 6
        properties = {
          title = "DLQ depth (${module.dead_letter.dlq_name})", region = local.dashboard_region, view = "timeSeries", period = 300
          metrics = [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", module.dead_letter.dlq_name, { label = "visible", stat = "Maximum" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", module.dead_letter.dlq_name, { label = "in flight", stat = "Maximum" }],
          ]
        }
      },
      {
        type = "metric", x = 8, y = 12, width = 8, height = 6
        properties = {
          title = "DLQ oldest message age (s)", region = local.dashboard_region, view = "timeSeries", period = 300
          metrics = [
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", module.dead_letter.dlq_name, { label = "oldest", stat = "Maximum" }],
          ]
        }
      },
      {
        type = "metric", x = 16, y = 12, width = 8, height = 6
        properties = {
          title   = "Failure answers sent by the consumer", region = local.dashboard_region, view = "timeSeries", period = 300
          metrics = [local.consumer_metric.FailureResponses, local.consumer_metric.FailureResponseErrors]
        }
      },
    ],
    [
      for q in compact([local.answers_log_group]) : {
        type = "log", x = 0, y = 18, width = 24, height = 6
        properties = {
          title  = "Answers by status and error code (response stream)"
          region = local.dashboard_region
          view   = "table"
          query  = "SOURCE '${q}' | filter message = \"kinesis record\" | stats count(*) as answers by payload.response.status as status, payload.response.errorCode as error_code | sort answers desc"
        }
      }
    ],
    [
      for q in local.answers_log_group == null ? ["no logger"] : [] : {
        type = "text", x = 0, y = 18, width = 24, height = 6
        properties = {
          markdown = "## Answers by status and error code\nThe response stream is not logged (create_outbound_logger = false): `cnm-ingest responses` reads it."
        }
      }
    ],
    [
      for i, m in ["Unanswered", "Stuck", "Lost"] : {
        type = "metric", x = 8 * i, y = 24, width = 8, height = 6
        properties = {
          title = "Reconciliation: ${m}, per collection", region = local.dashboard_region, view = "timeSeries", period = 300
          metrics = [[{
            id         = "q${i}"
            label      = m
            expression = "SELECT MAX(${m}) FROM SCHEMA(\"${local.metrics_namespace}\", collection) GROUP BY collection"
          }]]
        }
      }
    ],
  )
}

resource "aws_cloudwatch_dashboard" "this" {
  count = var.create_dashboard ? 1 : 0

  dashboard_name = "${var.prefix}-cnm-ingest"
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
