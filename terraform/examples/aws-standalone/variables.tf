variable "region" {
  type        = string
  description = "AWS region of the function, its store, the queue and the ECS cluster."
  default     = "us-east-1"
}

variable "package_path" {
  type        = string
  description = "The function's zip, built with `push-pool package aws`."
  default     = "../../../dist/push-pools-aws.zip"
}

variable "vpc_id" {
  type        = string
  description = "VPC of the function and its EFS store."

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must be a VPC id (vpc-...)."
  }
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnets (one per availability zone) for the function, the EFS mount targets and the tasks. They need a NAT gateway, or VPC endpoints for ECS, SQS, Secrets Manager and ECR, and a route to your images."

  validation {
    condition     = length(var.private_subnet_ids) > 0 && alltrue([for id in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]+$", id))])
    error_message = "private_subnet_ids must list one or more subnet ids (subnet-...)."
  }
}

variable "ecr_repository_arns" {
  type        = list(string)
  description = "ECR repositories holding your flows' images (the tasks' execution role may pull from them)."
  default     = []
}
