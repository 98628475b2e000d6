output "state_machine_arn" {
  description = "ARN of the CNM workflow state machine."
  value       = aws_sfn_state_machine.this.arn
}

output "state_machine_name" {
  description = "Name of the CNM workflow state machine."
  value       = aws_sfn_state_machine.this.name
}

output "state_machine_role_arn" {
  description = "ARN of the state machine's role."
  value       = aws_iam_role.state_machine.arn
}

output "state_machine_log_group_name" {
  description = "CloudWatch log group of the state machine."
  value       = aws_cloudwatch_log_group.state_machine.name
}

output "definition" {
  description = "The rendered state machine definition (JSON)."
  value       = aws_sfn_state_machine.this.definition
}

output "function_names" {
  description = "Task function names by key (start_status, translate_message, sync_granule, cnm_response, stop_status)."
  value       = { for k, f in module.function : k => f.function_name }
}

output "function_arns" {
  description = "Task function ARNs by key."
  value       = { for k, f in module.function : k => f.function_arn }
}

output "function_role_arns" {
  description = "Execution role ARNs of the task functions, by key."
  value       = { for k, f in module.function : k => f.role_arn }
}

output "function_log_group_names" {
  description = "Log groups of the task functions, by key."
  value       = { for k, f in module.function : k => f.log_group_name }
}

output "provider_read_role_arn" {
  description = "ARN of the role SyncGranule reads providers' files and secrets with (each session narrowed to one provider by a session policy)."
  value       = aws_iam_role.provider_read.arn
}
