data "azurerm_client_config" "current" {}

data "azurerm_resource_group" "this" {
  name = var.resource_group_name
}

resource "random_string" "suffix" {
  length  = 6
  upper   = false
  special = false
}

locals {
  # Storage account and Key Vault names are global and short: letters and digits only, plus a random suffix.
  compact_name         = replace(var.name, "-", "")
  storage_account_name = substr("${local.compact_name}pp${random_string.suffix.result}", 0, 24)
  key_vault_name       = substr("${var.name}-pp-${random_string.suffix.result}", 0, 24)
  function_app_name    = "${var.name}-push-pools-${random_string.suffix.result}"
  dedicated_plan       = var.service_plan_sku != "Y1"
  resource_group_id    = data.azurerm_resource_group.this.id
  tags                 = merge(var.tags, { "push-pools" = var.name })

  prefect_app_settings = var.orchestrator != "prefect" ? {} : merge(
    {
      PREFECT_API_URL              = var.prefect_api_url == null ? "" : var.prefect_api_url
      PUSH_POOL_PREFECT_WORK_POOLS = jsonencode(var.prefect_work_pools)
    },
    local.has_prefect_api_key ? {
      PREFECT_API_KEY = "@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret.prefect_api_key[0].versionless_id})"
    } : {},
    local.has_prefect_api_auth_string ? {
      PREFECT_API_AUTH_STRING = "@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret.prefect_api_auth_string[0].versionless_id})"
    } : {},
  )
  local_app_settings = var.orchestrator != "local" ? {} : { PUSH_POOL_HOME = var.embedded_store_path }

  app_settings = merge(
    var.app_settings,
    local.prefect_app_settings,
    local.local_app_settings,
    {
      # The Functions host's own storage and the queue trigger, both through the user-assigned identity.
      AzureWebJobsStorage__credential  = "managedidentity"
      AzureWebJobsStorage__clientId    = azurerm_user_assigned_identity.function.client_id
      PUSH_POOL_QUEUE__queueServiceUri = azurerm_storage_account.function.primary_queue_endpoint
      PUSH_POOL_QUEUE__credential      = "managedidentity"
      PUSH_POOL_QUEUE__clientId        = azurerm_user_assigned_identity.function.client_id
      PUSH_POOL_QUEUE_NAME             = azurerm_storage_queue.runs.name
      # DefaultAzureCredential picks the user-assigned identity by this client id.
      AZURE_CLIENT_ID                           = azurerm_user_assigned_identity.function.client_id
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "ClientId=${azurerm_user_assigned_identity.function.client_id};Authorization=AAD"
      PUSH_POOL_ORCHESTRATOR                    = var.orchestrator
      PUSH_POOL_WEBHOOK_SECRET                  = "@Microsoft.KeyVault(SecretUri=${azurerm_key_vault_secret.webhook.versionless_id})"
      PUSH_POOL_TICK_INTERVAL_SECONDS           = "60"
      PUSH_POOL_ACI_RETENTION_SECONDS           = tostring(var.container_group_retention_seconds)
      PUSH_POOL_ACI_RESOURCE_GROUPS             = jsonencode([local.resource_group_id])
      # The archive carries a requirements.txt: the deployment installs it (Oryx remote build).
      SCM_DO_BUILD_DURING_DEPLOYMENT = "true"
      ENABLE_ORYX_BUILD              = "true"
    },
  )
}

# ---- storage: the Functions host's state and the run queue -------------------------------------------------

resource "azurerm_storage_account" "function" {
  #checkov:skip=CKV_AZURE_33:Classic Storage Analytics queue logging needs shared keys, which are disabled; the diagnostic setting below sends queue logs to Log Analytics instead.
  #checkov:skip=CKV_AZURE_59:A Consumption-plan function app has no fixed outbound network to allow, so the Functions host reaches its storage over the public endpoint; every request needs an Entra ID token.
  #checkov:skip=CKV2_AZURE_33:Private endpoints need VNet integration, which the Consumption plan does not offer.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys suffice for queue messages (run ids) and host leases; a customer-managed key needs its own Key Vault key lifecycle.
  #checkov:skip=CKV_AZURE_206:Replication is the storage_replication_type variable (ZRS by default); GRS is the caller's choice, not a fixed rule.
  name                              = local.storage_account_name
  resource_group_name               = var.resource_group_name
  location                          = var.location
  account_tier                      = "Standard"
  account_kind                      = "StorageV2"
  account_replication_type          = var.storage_replication_type
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false
  default_to_oauth_authentication   = true
  local_user_enabled                = false
  infrastructure_encryption_enabled = true

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }

  sas_policy {
    expiration_period = "01.00:00:00"
  }

  tags = local.tags
}

resource "azurerm_storage_queue" "runs" {
  name               = var.queue_name
  storage_account_id = azurerm_storage_account.function.id
}

# The Functions host moves a message here after maxDequeueCount failed tries (host.json); created up front so it
# can be watched. A run whose message lands here is still submitted by the tick.
resource "azurerm_storage_queue" "runs_poison" {
  name               = "${var.queue_name}-poison"
  storage_account_id = azurerm_storage_account.function.id
}

resource "azurerm_monitor_diagnostic_setting" "queue" {
  name                       = "push-pools-queue-logs"
  target_resource_id         = "${azurerm_storage_account.function.id}/queueServices/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category = "StorageRead"
  }
  enabled_log {
    category = "StorageWrite"
  }
  enabled_log {
    category = "StorageDelete"
  }
}

# ---- monitoring ----------------------------------------------------------------------------------------------

resource "azurerm_log_analytics_workspace" "this" {
  name                = "${var.name}-push-pools-logs"
  resource_group_name = var.resource_group_name
  location            = var.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

resource "azurerm_application_insights" "this" {
  name                          = "${var.name}-push-pools"
  resource_group_name           = var.resource_group_name
  location                      = var.location
  workspace_id                  = azurerm_log_analytics_workspace.this.id
  application_type              = "other"
  local_authentication_disabled = true
  tags                          = local.tags
}

# ---- secrets -------------------------------------------------------------------------------------------------

resource "azurerm_key_vault" "this" {
  #checkov:skip=CKV_AZURE_109:Key Vault references of a Consumption-plan app are resolved over the public endpoint (no VNet integration); access is by Entra ID and RBAC only.
  #checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109.
  #checkov:skip=CKV2_AZURE_32:Private endpoints need VNet integration, which the Consumption plan does not offer.
  name                          = local.key_vault_name
  resource_group_name           = var.resource_group_name
  location                      = var.location
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "standard"
  rbac_authorization_enabled    = true
  purge_protection_enabled      = var.key_vault_purge_protection
  soft_delete_retention_days    = 30
  public_network_access_enabled = true

  network_acls {
    bypass         = "AzureServices"
    default_action = "Allow"
  }

  tags = local.tags
}

resource "random_password" "webhook" {
  length  = 48
  special = false
}

locals {
  has_prefect_api_key         = nonsensitive(var.prefect_api_key != null)
  has_prefect_api_auth_string = nonsensitive(var.prefect_api_auth_string != null)
}

resource "azurerm_key_vault_secret" "webhook" {
  #checkov:skip=CKV_AZURE_41:The webhook secret is rotated by tainting random_password.webhook; an expiry date would silently break the webhook when it passes.
  name         = "push-pool-webhook-secret"
  value        = random_password.webhook.result
  key_vault_id = azurerm_key_vault.this.id
  content_type = "text/plain"
  depends_on   = [azurerm_role_assignment.deployer_secrets_officer]
}

resource "azurerm_key_vault_secret" "prefect_api_key" {
  #checkov:skip=CKV_AZURE_41:Prefect API keys carry their own expiry, set in Prefect Cloud; the vault copy follows it.
  count        = local.has_prefect_api_key ? 1 : 0
  name         = "prefect-api-key"
  value        = var.prefect_api_key
  key_vault_id = azurerm_key_vault.this.id
  content_type = "text/plain"
  depends_on   = [azurerm_role_assignment.deployer_secrets_officer]
}

resource "azurerm_key_vault_secret" "prefect_api_auth_string" {
  #checkov:skip=CKV_AZURE_41:The basic-auth string is the Prefect server's own (PREFECT_SERVER_API_AUTH_STRING) and changes with it; an expiry date would silently cut the function off.
  count        = local.has_prefect_api_auth_string ? 1 : 0
  name         = "prefect-api-auth-string"
  value        = var.prefect_api_auth_string
  key_vault_id = azurerm_key_vault.this.id
  content_type = "text/plain"
  depends_on   = [azurerm_role_assignment.deployer_secrets_officer]
}

# ---- the function app ----------------------------------------------------------------------------------------

resource "azurerm_service_plan" "this" {
  #checkov:skip=CKV_AZURE_225:Zone redundancy needs a Premium plan and at least three instances; the executor is a small stateless function on Y1 or a single Dedicated instance.
  #checkov:skip=CKV_AZURE_211:service_plan_sku is the caller's choice; B1 is the smallest plan with a persistent /home for the embedded store (orchestrator = "local").
  #checkov:skip=CKV_AZURE_212:With the embedded store the plan runs exactly one instance on purpose (SQLite wants one writer); with Y1 the platform scales instances itself.
  name                = "${var.name}-push-pools"
  resource_group_name = var.resource_group_name
  location            = var.location
  os_type             = "Linux"
  sku_name            = var.service_plan_sku
  # The embedded SQLite store wants a single writer: one instance.
  worker_count = local.dedicated_plan && var.orchestrator == "local" ? 1 : null
  tags         = local.tags
}

resource "azurerm_linux_function_app" "this" {
  #checkov:skip=CKV_AZURE_221:The webhook must be reachable by Prefect automations (or whatever schedules runs); it authenticates every request itself (bearer token or HMAC signature).
  name                            = local.function_app_name
  resource_group_name             = var.resource_group_name
  location                        = var.location
  service_plan_id                 = azurerm_service_plan.this.id
  storage_account_name            = azurerm_storage_account.function.name
  storage_uses_managed_identity   = true
  zip_deploy_file                 = var.package_path
  https_only                      = true
  public_network_access_enabled   = true
  builtin_logging_enabled         = false
  functions_extension_version     = "~4"
  key_vault_reference_identity_id = azurerm_user_assigned_identity.function.id

  ftp_publish_basic_authentication_enabled = false

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.function.id]
  }

  site_config {
    # Timers only fire on a Dedicated plan that stays loaded.
    always_on                              = local.dedicated_plan
    ftps_state                             = "Disabled"
    minimum_tls_version                    = "1.2"
    http2_enabled                          = true
    application_insights_connection_string = azurerm_application_insights.this.connection_string

    application_stack {
      python_version = "3.11"
    }
  }

  app_settings = local.app_settings
  tags         = local.tags

  lifecycle {
    precondition {
      condition     = var.orchestrator != "local" || local.dedicated_plan
      error_message = "The embedded store (orchestrator = \"local\") needs a Dedicated plan: a Consumption app has no persistent /home."
    }
    precondition {
      condition     = var.orchestrator != "prefect" || var.prefect_api_url != null
      error_message = "orchestrator = \"prefect\" needs prefect_api_url."
    }
  }

  depends_on = [
    azurerm_role_assignment.function_storage_blob,
    azurerm_role_assignment.function_storage_queue,
    azurerm_role_assignment.function_secrets_user,
  ]
}
