output "function_app_name" {
  description = "Name of the function app."
  value       = azurerm_linux_function_app.this.name
}

output "webhook_url" {
  description = "The webhook: POST run requests here (bearer token or HMAC signature with the webhook secret)."
  value       = "https://${azurerm_linux_function_app.this.default_hostname}/api/runs"
}

output "webhook_secret_id" {
  description = "Key Vault id of the webhook secret (read it with `az keyvault secret show --id ...`)."
  value       = azurerm_key_vault_secret.webhook.versionless_id
}

output "queue_name" {
  description = "The run request queue; failed messages go to queue_name-poison."
  value       = azurerm_storage_queue.runs.name
}

output "queue_url" {
  description = "URL of the run request queue."
  value       = "${azurerm_storage_account.function.primary_queue_endpoint}${azurerm_storage_queue.runs.name}"
}

output "function_identity_principal_id" {
  description = "Principal id of the function's identity (holds the custom ACI role on the resource group)."
  value       = azurerm_user_assigned_identity.function.principal_id
}

output "jobs_identity_id" {
  description = "Resource id of the identity given to every container group: grant it what your flows need."
  value       = azurerm_user_assigned_identity.jobs.id
}

output "jobs_identity_principal_id" {
  description = "Principal id of the jobs' identity, for role assignments."
  value       = azurerm_user_assigned_identity.jobs.principal_id
}

output "jobs_identity_client_id" {
  description = "Client id of the jobs' identity: set AZURE_CLIENT_ID to it in flows that use DefaultAzureCredential."
  value       = azurerm_user_assigned_identity.jobs.client_id
}

output "aci_role_definition_id" {
  description = "The custom role the function holds on the resource group."
  value       = azurerm_role_definition.aci_executor.role_definition_resource_id
}

output "pool_job_variables" {
  description = "The aci pool's job variables for this deployment, as an object."
  value       = local.pool_job_variables
}

output "push_pool_create_args" {
  description = "Arguments for `push-pool create NAME $ARGS`: --type aci and, as JSON --set values, the subscription, resource group, region, the jobs' identity (and its registry, its subnets)."
  value = join(" ", concat(
    ["--type aci"],
    [for name, value in local.pool_job_variables : format("--set '%s=%s'", name, jsonencode(value))],
  ))
}

locals {
  pool_job_variables = merge(
    {
      subscription_id     = data.azurerm_client_config.current.subscription_id
      resource_group_name = var.resource_group_name
      location            = var.location
      identities          = [azurerm_user_assigned_identity.jobs.id]
    },
    var.container_registry_login_server == null ? {} : {
      image_registry = {
        registry_url = var.container_registry_login_server
        identity     = azurerm_user_assigned_identity.jobs.id
      }
    },
    length(var.container_subnet_ids) == 0 ? {} : { subnet_ids = var.container_subnet_ids },
  )
}
