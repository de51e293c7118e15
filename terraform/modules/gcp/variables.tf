variable "project_id" {
  description = "Google Cloud project that runs the functions and the Cloud Run jobs."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id: 6 to 30 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the functions, the Cloud Run jobs and the Cloud Scheduler tick."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (functions, topics, service accounts, secrets)."
  type        = string
  default     = "push-pools"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3 to 20 lowercase letters, digits and hyphens, starting with a letter (service account ids are at most 30 characters)."
  }
}

variable "function_source_zip" {
  description = "Path of the function archive built by `push-pool package gcp`."
  type        = string

  validation {
    condition     = endswith(var.function_source_zip, ".zip")
    error_message = "function_source_zip must be the .zip built by `push-pool package gcp`."
  }
}

variable "orchestrator" {
  description = "Where pools, deployments and runs live: `prefect` (a Prefect server or Prefect Cloud) or `local` (the embedded store, on the instance's in-memory disk: for trials only)."
  type        = string
  default     = "prefect"

  validation {
    condition     = contains(["prefect", "local"], var.orchestrator)
    error_message = "orchestrator must be \"prefect\" or \"local\"."
  }
}

variable "prefect_api_url" {
  description = "Prefect API URL (PREFECT_API_URL), e.g. https://api.prefect.cloud/api/accounts/A/workspaces/W. Required when orchestrator is prefect."
  type        = string
  default     = null

  validation {
    condition     = var.prefect_api_url == null || can(regex("^https?://", var.prefect_api_url))
    error_message = "prefect_api_url must be an http(s) URL."
  }
}

variable "prefect_api_key_secret_id" {
  description = "Id of an existing Secret Manager secret (in project_id) holding the Prefect API key. The function reads it as PREFECT_API_KEY and the jobs' service account may read it, so pools can set prefect_api_key_secret. Created outside Terraform, so the key never enters Terraform state."
  type        = string
  default     = null

  validation {
    condition     = var.prefect_api_key_secret_id == null || can(regex("^[a-zA-Z0-9_-]{1,255}$", var.prefect_api_key_secret_id))
    error_message = "prefect_api_key_secret_id must be a secret id (letters, digits, _ and -), not a resource name."
  }
}

variable "prefect_api_auth_string_secret_id" {
  description = "Id of an existing Secret Manager secret holding PREFECT_API_AUTH_STRING (user:password), for a self-hosted Prefect server behind basic auth."
  type        = string
  default     = null

  validation {
    condition     = var.prefect_api_auth_string_secret_id == null || can(regex("^[a-zA-Z0-9_-]{1,255}$", var.prefect_api_auth_string_secret_id))
    error_message = "prefect_api_auth_string_secret_id must be a secret id (letters, digits, _ and -), not a resource name."
  }
}

variable "prefect_work_pools" {
  description = "With orchestrator prefect: the Prefect work pools this executor serves (required on Prefect Cloud, which serves :push pools itself)."
  type        = list(string)
  default     = []
}

variable "webhook_secret_id" {
  description = "Id of an existing Secret Manager secret holding the webhook's shared secret. Null: the module makes one with a random value (which Terraform state then holds)."
  type        = string
  default     = null

  validation {
    condition     = var.webhook_secret_id == null || can(regex("^[a-zA-Z0-9_-]{1,255}$", var.webhook_secret_id))
    error_message = "webhook_secret_id must be a secret id (letters, digits, _ and -)."
  }
}

variable "secret_version" {
  description = "Version of the secrets the functions read at instance start: \"latest\", or a number to roll a rotation out deliberately (new instances read it)."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^(latest|[1-9][0-9]*)$", var.secret_version))
    error_message = "secret_version must be \"latest\" or a version number."
  }
}

variable "enable_webhook" {
  description = "Deploy the HTTP webhook function. Without it, runs are submitted by the tick (every minute) and by Pub/Sub messages."
  type        = bool
  default     = true
}

variable "webhook_public" {
  description = "Let anyone reach the webhook (allUsers may invoke it); every request must still carry the shared secret. Prefect's automations need this: they cannot sign Google ID tokens."
  type        = bool
  default     = true
}

variable "webhook_ingress" {
  description = "Who can reach the webhook over the network: ALLOW_ALL (Prefect Cloud), ALLOW_INTERNAL_ONLY (callers in your VPC) or ALLOW_INTERNAL_AND_GCLB (behind a load balancer)."
  type        = string
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.webhook_ingress)
    error_message = "webhook_ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "webhook_invokers" {
  description = "Members allowed to invoke the webhook when it is not public, e.g. [\"serviceAccount:ci@p.iam.gserviceaccount.com\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.webhook_invokers : can(regex("^(user|serviceAccount|group|domain|principal|principalSet):", member))])
    error_message = "webhook_invokers must be IAM members such as serviceAccount:NAME@PROJECT.iam.gserviceaccount.com."
  }
}

variable "tick_schedule" {
  description = "Cron schedule of the tick (Cloud Scheduler publishes {\"action\": \"tick\"}). Runs announced early are submitted by the tick once due, so this bounds how late they start."
  type        = string
  default     = "* * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.tick_schedule))) == 5
    error_message = "tick_schedule must be a five-field cron expression."
  }
}

variable "tick_interval_seconds" {
  description = "Seconds between ticks as tick_schedule sets them; a pool shows READY while ticks come within three of these."
  type        = number
  default     = 60

  validation {
    condition     = var.tick_interval_seconds >= 60
    error_message = "Cloud Scheduler ticks at most once a minute: tick_interval_seconds must be at least 60."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of a Pub/Sub message before it moves to the dead-letter topic (Pub/Sub allows 5 to 100)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100."
  }
}

variable "retry_minimum_backoff_seconds" {
  description = "Pub/Sub's first wait before delivering a refused message again (0 to 600)."
  type        = number
  default     = 10

  validation {
    condition     = var.retry_minimum_backoff_seconds >= 0 && var.retry_minimum_backoff_seconds <= 600
    error_message = "retry_minimum_backoff_seconds must be between 0 and 600."
  }
}

variable "retry_maximum_backoff_seconds" {
  description = "Pub/Sub's longest wait between deliveries of a refused message (up to 600)."
  type        = number
  default     = 300

  validation {
    condition     = var.retry_maximum_backoff_seconds > 0 && var.retry_maximum_backoff_seconds <= 600
    error_message = "retry_maximum_backoff_seconds must be between 1 and 600."
  }
}

variable "dead_letter_retention_seconds" {
  description = "How long the dead-letter subscription keeps messages for a person to inspect (Pub/Sub allows up to 7 days)."
  type        = number
  default     = 604800

  validation {
    condition     = var.dead_letter_retention_seconds >= 600 && var.dead_letter_retention_seconds <= 604800
    error_message = "dead_letter_retention_seconds must be between 600 and 604800."
  }
}

variable "function_timeout_seconds" {
  description = "Timeout of each function invocation. Pub/Sub's acknowledgement deadline follows it, so at most 540."
  type        = number
  default     = 120

  validation {
    condition     = var.function_timeout_seconds >= 30 && var.function_timeout_seconds <= 540
    error_message = "function_timeout_seconds must be between 30 and 540."
  }
}

variable "function_memory" {
  description = "Memory of each function instance."
  type        = string
  default     = "512Mi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.function_memory))
    error_message = "function_memory must be like 256Mi or 1Gi."
  }
}

variable "max_instances" {
  description = "Most instances of each function at once; bounds the Cloud Run calls made in parallel."
  type        = number
  default     = 20

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 1000
    error_message = "max_instances must be between 1 and 1000."
  }
}

variable "submit_deadline_seconds" {
  description = "No new submission try starts after this long (PUSH_POOL_SUBMIT_DEADLINE_SECONDS); keep it well inside function_timeout_seconds."
  type        = number
  default     = 30

  validation {
    condition     = var.submit_deadline_seconds > 0 && var.submit_deadline_seconds <= 300
    error_message = "submit_deadline_seconds must be between 1 and 300."
  }
}

variable "submit_attempts" {
  description = "Tries per submission within one invocation (PUSH_POOL_SUBMIT_ATTEMPTS), bounded by submit_deadline_seconds. Cloud Run's job-run quota refills by the minute and its 429s give no wait hint to count on, so a throttled run keeps trying here rather than waiting out Pub/Sub's redelivery backoff."
  type        = number
  default     = 10

  validation {
    condition     = var.submit_attempts >= 1 && var.submit_attempts <= 20
    error_message = "submit_attempts must be between 1 and 20."
  }
}

variable "job_retention_seconds" {
  description = "A Cloud Run job made by push-pools with no execution for this long, and none running, is deleted by the tick (a project holds at most 1,000 jobs)."
  type        = number
  default     = 604800

  validation {
    condition     = var.job_retention_seconds >= 3600
    error_message = "job_retention_seconds must be at least 3600."
  }
}

variable "environment_variables" {
  description = "More environment variables for the functions (PUSH_POOL_* settings)."
  type        = map(string)
  default     = {}
}

variable "labels" {
  description = "Labels of the resources that take them."
  type        = map(string)
  default     = {}
}

variable "enable_apis" {
  description = "Enable the Google APIs the module uses (left enabled on destroy)."
  type        = bool
  default     = true
}

variable "build_service_account" {
  description = "Service account (resource name projects/P/serviceAccounts/EMAIL) Cloud Build uses to build the functions. Null: the project's default build account."
  type        = string
  default     = null
}

variable "kms_key_name" {
  description = "Cloud KMS key encrypting the Pub/Sub topics and the source bucket. Null: Google-managed keys."
  type        = string
  default     = null
}
