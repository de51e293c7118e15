output "webhook_url" {
  description = "URL for the Prefect automation's call-webhook action (send the webhook secret as a bearer token)."
  value       = module.push_pools.webhook_url
}

output "webhook_secret_arn" {
  description = "Secret holding the webhook's shared secret."
  value       = module.push_pools.webhook_secret_arn
}

output "prefect_api_key_secret_arn" {
  description = "Secret to put the Prefect API key in (see main.tf)."
  value       = aws_secretsmanager_secret.prefect_api_key.arn
}

output "push_pool_create_command" {
  description = "Creates the ECS work pool in Prefect (run with PUSH_POOL_ORCHESTRATOR=prefect and your Prefect settings)."
  value       = module.push_pools.push_pool_create_command
}

output "task_role_name" {
  description = "Attach the permissions your flows need to this role."
  value       = module.push_pools.task_role_name
}
