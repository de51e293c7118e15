output "webhook_url" {
  description = "The webhook for run requests."
  value       = module.push_pools.webhook_url
}

output "webhook_secret_id" {
  description = "Key Vault id of the webhook secret."
  value       = module.push_pools.webhook_secret_id
}

output "push_pool_create_args" {
  description = "Run `push-pool create azure $(terraform output -raw push_pool_create_args)`."
  value       = module.push_pools.push_pool_create_args
}
