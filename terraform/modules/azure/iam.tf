# Two user-assigned identities: the function's (creates and deletes container groups) and the jobs' (given to
# each container group: pulls its image, and is what flow code runs as). They are kept apart so that flow code
# never holds the right to start more containers.

resource "azurerm_user_assigned_identity" "function" {
  name                = "${var.name}-push-pools-function"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = local.tags
}

resource "azurerm_user_assigned_identity" "jobs" {
  name                = "${var.name}-push-pools-jobs"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = local.tags
}

locals {
  # Exactly the ARM actions push_pools/platforms/azure/backend.py calls (REQUIRED_ACTIONS there; a test keeps them equal).
  aci_actions = [
    "Microsoft.ContainerInstance/containerGroups/read",
    "Microsoft.ContainerInstance/containerGroups/write",
    "Microsoft.ContainerInstance/containerGroups/delete",
    "Microsoft.ContainerInstance/containerGroups/containers/logs/read",
    # The region of the resource group, read once per instance for templates that say [resourceGroup().location].
    "Microsoft.Resources/subscriptions/resourceGroups/read",
  ]
  subnet_resource_groups = distinct([
    for id in var.container_subnet_ids : regex("^(/subscriptions/[^/]+/resourceGroups/[^/]+)/", id)[0]
  ])
}

# ---- the function's rights on ACI: a custom role, not Contributor -------------------------------------------

resource "azurerm_role_definition" "aci_executor" {
  name        = "push-pools ACI executor (${var.name}-${random_string.suffix.result})"
  scope       = local.resource_group_id
  description = "Create, read, delete container groups and read their logs: what push-pools' function does on ACI."

  permissions {
    actions     = local.aci_actions
    not_actions = []
  }

  assignable_scopes = [local.resource_group_id]
}

resource "azurerm_role_assignment" "function_aci" {
  scope              = local.resource_group_id
  role_definition_id = azurerm_role_definition.aci_executor.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.function.principal_id
  principal_type     = "ServicePrincipal"
}

# Creating a group that holds the jobs' identity needs assign/action on that identity, and on no other.
resource "azurerm_role_definition" "assign_jobs_identity" {
  name        = "push-pools assign jobs identity (${var.name}-${random_string.suffix.result})"
  scope       = local.resource_group_id
  description = "Give the flow runs' user-assigned identity to the container groups push-pools creates."

  permissions {
    actions     = ["Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"]
    not_actions = []
  }

  assignable_scopes = [local.resource_group_id]
}

resource "azurerm_role_assignment" "function_assign_jobs_identity" {
  scope              = azurerm_user_assigned_identity.jobs.id
  role_definition_id = azurerm_role_definition.assign_jobs_identity.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.function.principal_id
  principal_type     = "ServicePrincipal"
}

# Joining subnets, only when container groups run in a virtual network, and only on those subnets.
resource "azurerm_role_definition" "join_subnets" {
  count       = length(var.container_subnet_ids) > 0 ? 1 : 0
  name        = "push-pools join subnets (${var.name}-${random_string.suffix.result})"
  scope       = local.subnet_resource_groups[0]
  description = "Put push-pools' container groups in the given subnets."

  permissions {
    actions     = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    not_actions = []
  }

  assignable_scopes = local.subnet_resource_groups
}

resource "azurerm_role_assignment" "function_join_subnets" {
  for_each           = toset(var.container_subnet_ids)
  scope              = each.value
  role_definition_id = azurerm_role_definition.join_subnets[0].role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.function.principal_id
  principal_type     = "ServicePrincipal"
}

# ---- the function's data-plane rights ------------------------------------------------------------------------

# The Functions host keeps leases and timer state in blobs.
resource "azurerm_role_assignment" "function_storage_blob" {
  scope                = azurerm_storage_account.function.id
  role_definition_name = "Storage Blob Data Owner"
  principal_id         = azurerm_user_assigned_identity.function.principal_id
  principal_type       = "ServicePrincipal"
}

# The queue trigger reads, deletes and poisons messages; delayed runs are sent back to the queue.
resource "azurerm_role_assignment" "function_storage_queue" {
  scope                = azurerm_storage_account.function.id
  role_definition_name = "Storage Queue Data Contributor"
  principal_id         = azurerm_user_assigned_identity.function.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "function_secrets_user" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.function.principal_id
  principal_type       = "ServicePrincipal"
}

# Application Insights with local authentication off takes telemetry from Entra ID principals with this role.
resource "azurerm_role_assignment" "function_telemetry" {
  scope                = azurerm_application_insights.this.id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = azurerm_user_assigned_identity.function.principal_id
  principal_type       = "ServicePrincipal"
}

# Whoever runs Terraform writes the secrets (the vault uses RBAC, not access policies).
resource "azurerm_role_assignment" "deployer_secrets_officer" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

# ---- the jobs' rights ----------------------------------------------------------------------------------------

resource "azurerm_role_assignment" "jobs_acr_pull" {
  count                = var.container_registry_id == null ? 0 : 1
  scope                = var.container_registry_id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_user_assigned_identity.jobs.principal_id
  principal_type       = "ServicePrincipal"
}
