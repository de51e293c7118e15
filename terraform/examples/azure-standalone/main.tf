# push-pools on Azure with no orchestrator: the embedded store lives on the app's persistent /home, so the plan is
# a single Dedicated (B1) instance. Pools and deployments are managed with the push-pool CLI against the webhook,
# or by copying a store made locally; images come from a private Azure Container Registry pulled by the jobs'
# identity.

provider "azurerm" {
  features {}
  storage_use_azuread = true
  subscription_id     = var.subscription_id
}

resource "azurerm_resource_group" "this" {
  name     = var.resource_group_name
  location = var.location
}

module "push_pools" {
  source = "../../modules/azure"

  name                              = "standalone"
  resource_group_name               = azurerm_resource_group.this.name
  location                          = azurerm_resource_group.this.location
  package_path                      = var.package_path
  orchestrator                      = "local"
  service_plan_sku                  = "B1"
  container_registry_id             = var.container_registry_id
  container_registry_login_server   = var.container_registry_login_server
  container_group_retention_seconds = 900
}
