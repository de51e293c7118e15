output "webhook_url" {
  description = "The webhook's URL: POST {\"flow_run_id\": ...} with the webhook secret."
  value       = module.push_pools.webhook_url
}

output "webhook_secret_arn" {
  description = "Secret holding the webhook's shared secret."
  value       = module.push_pools.webhook_secret_arn
}

output "store_file_system_id" {
  description = "EFS file system holding the embedded store (mount it, with the access point, where you run the CLI)."
  value       = aws_efs_file_system.store.id
}

output "store_access_point_id" {
  description = "EFS access point of the store (its root is PUSH_POOL_HOME)."
  value       = aws_efs_access_point.store.id
}

output "push_pool_create_command" {
  description = "Creates an `ecs` pool for this deployment (run it with PUSH_POOL_HOME on the mounted store)."
  value       = module.push_pools.push_pool_create_command
}
