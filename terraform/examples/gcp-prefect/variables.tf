variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions and the Cloud Run jobs."
  type        = string
  default     = "us-central1"
}

variable "function_source_zip" {
  description = "Archive built by `push-pool package gcp`."
  type        = string
  default     = "../../../dist/push-pools-gcp.zip"
}

variable "prefect_api_url" {
  description = "PREFECT_API_URL of the Prefect server or Prefect Cloud workspace."
  type        = string
}

variable "prefect_api_key_secret_id" {
  description = "Secret Manager secret holding the Prefect API key, created beforehand (`gcloud secrets create prefect-api-key --data-file=-`)."
  type        = string
  default     = "prefect-api-key"
}

variable "prefect_work_pools" {
  description = "Prefect work pools (type cloud-run-v2:push or cloud-run) this executor serves."
  type        = list(string)
}
