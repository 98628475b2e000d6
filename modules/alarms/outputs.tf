output "topic_arn" {
  description = "ARN of the alarm topic (created or given); null when alarms have no actions."
  value       = local.topic_arn
}

output "alarm_arns" {
  description = "ARNs of every alarm, by name."
  value = merge(
    { (aws_cloudwatch_metric_alarm.stream_iterator_age.alarm_name) = aws_cloudwatch_metric_alarm.stream_iterator_age.arn },
    { (aws_cloudwatch_metric_alarm.dlq_not_empty.alarm_name) = aws_cloudwatch_metric_alarm.dlq_not_empty.arn },
    { for a in aws_cloudwatch_metric_alarm.consumer_iterator_age : a.alarm_name => a.arn },
    { for a in aws_cloudwatch_metric_alarm.function_errors : a.alarm_name => a.arn },
  )
}
