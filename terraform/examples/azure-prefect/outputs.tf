output "webhook_url" {
  description = "Point a Prefect automation's call-webhook action here (with the secret as a bearer token)."
  value       = module.push_pools.webhook_url
}

output "webhook_secret_id" {
  description = "Key Vault id of the webhook secret."
  value       = module.push_pools.webhook_secret_id
}

output "pool_job_variables" {
  description = "Set these as the defaults of the Prefect pool's base job template variables."
  value       = module.push_pools.pool_job_variables
}
