output "webhook_url" {
  description = "The webhook: POST {\"flow_run_id\": ...} or {\"action\": \"tick\"} with the shared secret."
  value       = module.push_pools.webhook_url
}

output "webhook_secret_id" {
  description = "Secret holding the webhook's shared secret."
  value       = module.push_pools.webhook_secret_id
}

output "pool_create_args" {
  description = "Arguments for `push-pool create NAME --type cloud-run ...`."
  value       = module.push_pools.pool_create_args
}
