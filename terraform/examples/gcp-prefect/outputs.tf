output "webhook_url" {
  description = "Prefect automations' call-webhook URL."
  value       = module.push_pools.webhook_url
}

output "webhook_secret_id" {
  description = "Secret holding the token the automations send as `Authorization: Bearer ...`."
  value       = module.push_pools.webhook_secret_id
}

output "pool_variables" {
  description = "Job variable defaults to put in the Prefect work pools' base job templates."
  value       = module.push_pools.pool_variables
}
