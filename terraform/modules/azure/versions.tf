terraform {
  required_version = ">= 1.6"

  required_providers {
    azurerm = {
      source = "hashicorp/azurerm"
      # 4.42 brought `rbac_authorization_enabled` on Key Vault and ARM-based storage queues (`storage_account_id`).
      version = ">= 4.42, < 5.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
  }
}
