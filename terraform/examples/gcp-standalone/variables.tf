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
