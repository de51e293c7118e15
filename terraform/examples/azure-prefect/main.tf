# push-pools on Azure for a Prefect server or Prefect Cloud: a Consumption-plan function app serves the
# azure-container-instance:push pools, with its webhook for Prefect automations and a tick every minute.

provider "azurerm" {
  features {}
  # The storage account has shared keys disabled: the provider talks to its data plane with Entra ID.
  storage_use_azuread = true
  subscription_id     = var.subscription_id
}

resource "azurerm_resource_group" "this" {
  name     = var.resource_group_name
  location = var.location
}

module "push_pools" {
  source = "../../modules/azure"

  name                = "flows"
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  package_path        = var.package_path
  orchestrator        = "prefect"
  prefect_api_url     = var.prefect_api_url
  prefect_api_key     = var.prefect_api_key
  prefect_work_pools  = var.prefect_work_pools
}
