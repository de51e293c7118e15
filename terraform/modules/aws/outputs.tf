output "function_name" {
  description = "Name of the push-pools Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the push-pools Lambda function (invoke it directly with {\"action\": \"tick\"} to tick now)."
  value       = aws_lambda_function.this.arn
}

output "function_role_arn" {
  description = "ARN of the function's IAM role."
  value       = aws_iam_role.function.arn
}

output "webhook_url" {
  description = "The webhook's URL (the function URL): POST {\"flow_run_id\": ...} with the webhook secret. Null when create_function_url is false."
  value       = var.create_function_url ? aws_lambda_function_url.webhook[0].function_url : null
}

output "webhook_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the webhook's shared secret (read it with `aws secretsmanager get-secret-value`)."
  value       = local.webhook_secret_arn
}

output "queue_url" {
  description = "URL of the run queue (delayed submissions, retries)."
  value       = aws_sqs_queue.runs.url
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue: run messages that failed every delivery, and events the function could not take."
  value       = aws_sqs_queue.dead_letters.url
}

output "cluster_name" {
  description = "Name of the ECS cluster the tasks run in."
  value       = local.cluster_name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster the tasks run in."
  value       = local.cluster_arn
}

output "execution_role_arn" {
  description = "ARN of the tasks' execution role (image pull, logs, API-key secret)."
  value       = local.execution_role_arn
}

output "task_role_arn" {
  description = "ARN of the role flows run as by default (null when create_task_role is false and task_role_arns is empty)."
  value       = local.task_role_arn
}

output "task_role_name" {
  description = "Name of the created task role, to attach your flows' permissions to (null when create_task_role is false)."
  value       = var.create_task_role ? aws_iam_role.task[0].name : null
}

output "tasks_log_group_name" {
  description = "CloudWatch log group of the tasks' output."
  value       = aws_cloudwatch_log_group.tasks.name
}

output "pool_job_variables" {
  description = "Defaults an `ecs` work pool needs to run tasks in this deployment (cluster, roles, logs, network, API-key secret)."
  value       = local.pool_defaults
}

output "push_pool_create_command" {
  description = "A ready `push-pool create` command for an `ecs` pool using this deployment (replace POOL with its name)."
  value = join(" ", concat(
    ["push-pool create POOL --type ecs"],
    [for key, value in local.pool_defaults : "--set '${key}=${can(tostring(value)) ? tostring(value) : jsonencode(value)}'"],
  ))
}
