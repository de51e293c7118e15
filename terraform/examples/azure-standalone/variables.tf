variable "subscription_id" {
  type        = string
  description = "Azure subscription to deploy into."
}

variable "resource_group_name" {
  type        = string
  description = "Resource group created for push-pools and its container groups."
  default     = "rg-push-pools-standalone"
}

variable "location" {
  type        = string
  description = "Azure region."
  default     = "westeurope"
}

variable "package_path" {
  type        = string
  description = "The archive from `push-pool package azure`."
  default     = "../../../dist/push-pools-azure.zip"
}

variable "container_registry_id" {
  type        = string
  description = "Resource id of the Azure Container Registry holding the flow images (null: public images)."
  default     = null
}

variable "container_registry_login_server" {
  type        = string
  description = "Login server of that registry, e.g. acme.azurecr.io."
  default     = null
}
