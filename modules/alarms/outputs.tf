output "topic_arn" {
  description = "ARN of the alarm topic (created or given); null when alarms have no actions."
  value       = local.topic_arn
}

output "alarm_arns" {
  description = "ARNs of every alarm, by name."
  value       = { for a in aws_cloudwatch_metric_alarm.this : a.alarm_name => a.arn }
}
