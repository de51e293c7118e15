variable "name" {
  type        = string
  description = "Short name of this executor, used in every resource name (lowercase letters, digits and hyphens)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}[a-z0-9]$", var.name))
    error_message = "name must be 3-16 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "resource_group_name" {
  type        = string
  description = "Existing resource group for the function app, its storage, Key Vault, monitoring, identities and the flow runs' container groups."

  validation {
    condition     = can(regex("^[-\\w.()]{0,89}[-\\w()]$", var.resource_group_name))
    error_message = "resource_group_name must be 1-90 letters, digits, '-', '_', '.', '(' or ')' and not end with '.'."
  }
}

variable "location" {
  type        = string
  description = "Azure region of everything this module creates, and of the container groups (e.g. westeurope)."

  validation {
    condition     = can(regex("^[a-z0-9]+$", var.location))
    error_message = "location must be a region name such as westeurope or eastus2 (lowercase, no spaces)."
  }
}

variable "package_path" {
  type        = string
  description = "Path of the function archive built by `push-pool package azure`."

  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "package_path must be the .zip built by `push-pool package azure`."
  }
}

variable "service_plan_sku" {
  type        = string
  description = "App Service plan SKU: Y1 (Consumption, scales to zero) or a Dedicated Linux SKU. The embedded store (orchestrator = \"local\") needs a Dedicated SKU for its persistent /home."
  default     = "Y1"

  validation {
    condition     = contains(["Y1", "B1", "B2", "B3", "S1", "S2", "S3", "P0v3", "P1v3", "P2v3", "P3v3"], var.service_plan_sku)
    error_message = "service_plan_sku must be Y1 or a Dedicated Linux SKU (B1-B3, S1-S3, P0v3-P3v3); Elastic Premium needs a keyed content share, which this module does not create."
  }
}

variable "orchestrator" {
  type        = string
  description = "Where pools, deployments and runs live: \"prefect\" (a Prefect server or Prefect Cloud) or \"local\" (push-pools' embedded store on the app's /home)."
  default     = "prefect"

  validation {
    condition     = contains(["local", "prefect"], var.orchestrator)
    error_message = "orchestrator must be \"local\" or \"prefect\"."
  }
}

variable "prefect_api_url" {
  type        = string
  description = "PREFECT_API_URL of the Prefect server or Cloud workspace (orchestrator = \"prefect\")."
  default     = null

  validation {
    condition     = var.prefect_api_url == null || can(regex("^https?://", var.prefect_api_url))
    error_message = "prefect_api_url must be an http(s) URL, e.g. https://api.prefect.cloud/api/accounts/<id>/workspaces/<id>."
  }
}

variable "prefect_api_key" {
  type        = string
  description = "Prefect Cloud API key; stored in Key Vault and given to the app as a Key Vault reference. Null for a self-hosted server without auth."
  default     = null
  sensitive   = true
}

variable "prefect_api_auth_string" {
  type        = string
  description = "Basic-auth string (user:password) of a self-hosted Prefect server behind basic auth; stored in Key Vault and given to the app as a Key Vault reference. Null: no basic auth."
  default     = null
  sensitive   = true
}

variable "prefect_work_pools" {
  type        = list(string)
  description = "Prefect work pools this executor serves (required on Prefect Cloud); empty serves every azure-container-instance:push pool of a self-hosted server."
  default     = []

  validation {
    condition     = alltrue([for pool in var.prefect_work_pools : can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", pool))])
    error_message = "Each work pool name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit."
  }
}

variable "embedded_store_path" {
  type        = string
  description = "PUSH_POOL_HOME of the embedded store (orchestrator = \"local\"): a directory under /home, which App Service keeps across restarts."
  default     = "/home/data/push-pools"

  validation {
    condition     = startswith(var.embedded_store_path, "/home/")
    error_message = "embedded_store_path must be under /home/, the only persistent directory of an App Service app."
  }
}

variable "queue_name" {
  type        = string
  description = "Storage queue of run requests; the Functions host moves messages that fail maxDequeueCount times to <queue_name>-poison."
  default     = "push-pool-runs"

  validation {
    condition     = can(regex("^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,55}$", var.queue_name))
    error_message = "queue_name must be 3-56 lowercase letters, digits and single hyphens (it gets a -poison twin of at most 63)."
  }
}

variable "container_group_retention_seconds" {
  type        = number
  description = "Finished container groups are deleted this long after their container ended (ACI allows 100 groups per region)."
  default     = 600

  validation {
    condition     = var.container_group_retention_seconds >= 120 && var.container_group_retention_seconds <= 86400
    error_message = "container_group_retention_seconds must be between 120 (two ticks, so exit codes are read first) and 86400."
  }
}

variable "container_subnet_ids" {
  type        = list(string)
  description = "Subnets (delegated to Microsoft.ContainerInstance/containerGroups) the container groups may join; the executor gets subnets/join/action on each, and nothing when empty."
  default     = []

  validation {
    condition = alltrue([
      for id in var.container_subnet_ids :
      can(regex("^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.Network/virtualNetworks/[^/]+/subnets/[^/]+$", id))
    ])
    error_message = "Each container_subnet_ids entry must be a subnet resource id (/subscriptions/.../virtualNetworks/VNET/subnets/SUBNET)."
  }
}

variable "container_registry_id" {
  type        = string
  description = "Azure Container Registry the flow images come from; the jobs' identity gets AcrPull on it and the pool's image_registry uses that identity. Null for public images."
  default     = null

  validation {
    condition     = var.container_registry_id == null || can(regex("^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.ContainerRegistry/registries/[^/]+$", var.container_registry_id))
    error_message = "container_registry_id must be a registry resource id (/subscriptions/.../providers/Microsoft.ContainerRegistry/registries/NAME)."
  }
}

variable "container_registry_login_server" {
  type        = string
  description = "Login server of container_registry_id (e.g. acme.azurecr.io), for the pool's image_registry."
  default     = null

  validation {
    condition     = var.container_registry_login_server == null || can(regex("^[a-z0-9.-]+$", var.container_registry_login_server))
    error_message = "container_registry_login_server must be a host name such as acme.azurecr.io."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Days the Log Analytics workspace behind Application Insights keeps logs."
  default     = 30

  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "log_retention_days must be between 30 and 730."
  }
}

variable "storage_replication_type" {
  type        = string
  description = "Replication of the storage account holding the Functions host state and the run queue."
  default     = "ZRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "GZRS", "RAGRS", "RAGZRS"], var.storage_replication_type)
    error_message = "storage_replication_type must be LRS, ZRS, GRS, GZRS, RAGRS or RAGZRS."
  }
}

variable "key_vault_purge_protection" {
  type        = bool
  description = "Purge protection on the Key Vault (cannot be turned off once on; a deleted vault's name stays taken for the retention period)."
  default     = true
}

variable "app_settings" {
  type        = map(string)
  description = "Extra app settings (PUSH_POOL_* tuning, for example). They cannot replace the settings this module manages."
  default     = {}

  validation {
    condition = length(setintersection(keys(var.app_settings), [
      "AZURE_CLIENT_ID", "PUSH_POOL_ORCHESTRATOR", "PUSH_POOL_WEBHOOK_SECRET", "PUSH_POOL_QUEUE_NAME", "PREFECT_API_KEY",
    ])) == 0
    error_message = "app_settings cannot set AZURE_CLIENT_ID, PUSH_POOL_ORCHESTRATOR, PUSH_POOL_WEBHOOK_SECRET, PUSH_POOL_QUEUE_NAME or PREFECT_API_KEY; use this module's variables."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource this module creates."
  default     = {}
}
