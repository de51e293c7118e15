variable "subscription_id" {
  type        = string
  description = "Azure subscription to deploy into."
}

variable "resource_group_name" {
  type        = string
  description = "Resource group created for push-pools and its container groups."
  default     = "rg-push-pools"
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

variable "prefect_api_url" {
  type        = string
  description = "PREFECT_API_URL of your Prefect Cloud workspace or server."
}

variable "prefect_api_key" {
  type        = string
  description = "Prefect Cloud API key (null for a self-hosted server without auth)."
  default     = null
  sensitive   = true
}

variable "prefect_work_pools" {
  type        = list(string)
  description = "The azure-container-instance:push work pools this executor serves."
  default     = ["azure-push"]
}
