output "function_name" {
  description = "Name of the reconcile function."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the reconcile function."
  value       = module.function.function_arn
}

output "role_arn" {
  description = "ARN of the reconcile function's execution role (reads only)."
  value       = module.function.role_arn
}

output "schedule_rule_name" {
  description = "Name of the EventBridge rule that runs the reconciliation."
  value       = aws_cloudwatch_event_rule.schedule.name
}

output "alarm_arns" {
  description = "ARNs of the reconciliation alarms (Unanswered, Stuck, Lost: over every collection, and per listed collection), by name."
  value       = { for a in aws_cloudwatch_metric_alarm.this : a.alarm_name => a.arn }
}

output "metric_namespace" {
  description = "CloudWatch namespace of the metrics Unanswered, Stuck and Lost (dimension collection)."
  value       = local.namespace
}
