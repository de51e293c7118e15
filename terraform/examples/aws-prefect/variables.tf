variable "region" {
  type        = string
  description = "AWS region of the function, the queue and the ECS cluster."
  default     = "us-east-1"
}

variable "package_path" {
  type        = string
  description = "The function's zip, built with `push-pool package aws`."
  default     = "../../../dist/push-pools-aws.zip"
}

variable "prefect_api_url" {
  type        = string
  description = "PREFECT_API_URL of your Prefect server, or of your Prefect Cloud workspace (https://api.prefect.cloud/api/accounts/<id>/workspaces/<id>)."

  validation {
    condition     = can(regex("^https?://", var.prefect_api_url))
    error_message = "prefect_api_url must be an http(s) URL."
  }
}

variable "ecr_repository_arns" {
  type        = list(string)
  description = "ECR repositories holding your flows' images (the tasks' execution role may pull from them)."
  default     = []
}

variable "prefect_work_pools" {
  type        = list(string)
  description = "The Prefect work pools the function serves (required on Prefect Cloud), e.g. [\"my-ecs-pool\"]."
  default     = ["my-ecs-pool"]
}
