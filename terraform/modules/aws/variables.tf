# ---- the function ----------------------------------------------------------------------------------------------

variable "name" {
  type        = string
  description = "Name of the function and prefix of every resource the module creates (queue, roles, log groups, schedule)."
  default     = "push-pools"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,37}$", var.name))
    error_message = "name must be 1-38 letters, digits, hyphens or underscores, starting with a letter or digit (room for suffixes such as -task-execution)."
  }
}

variable "package_path" {
  type        = string
  description = "Path of the function's zip, as built by `push-pool package aws --file PATH` (Python 3.11, dependencies vendored)."

  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "package_path must be the .zip built by `push-pool package aws`."
  }
}

variable "architecture" {
  type        = string
  description = "The function's CPU architecture; must match the one the package was built for (`push-pool package aws --architecture`)."
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "memory_size" {
  type        = number
  description = "Memory of the function in MB (CPU scales with it)."
  default     = 512

  validation {
    condition     = var.memory_size >= 256 && var.memory_size <= 10240
    error_message = "memory_size must be between 256 and 10240 MB."
  }
}

variable "timeout_seconds" {
  type        = number
  description = "Function timeout. Keep it above PUSH_POOL_SUBMIT_DEADLINE_SECONDS (30 s by default) plus a burst's pacing; the queue's visibility timeout is six times this."
  default     = 120

  validation {
    condition     = var.timeout_seconds >= 30 && var.timeout_seconds <= 900
    error_message = "timeout_seconds must be between 30 and 900."
  }
}

variable "reserved_concurrency" {
  type        = number
  description = "Concurrent executions reserved for (and capping) the function; null leaves it on the account's unreserved pool."
  default     = null

  validation {
    condition     = var.reserved_concurrency == null ? true : var.reserved_concurrency >= 1
    error_message = "reserved_concurrency must be at least 1 (0 would stop the function)."
  }
}

variable "environment" {
  type        = map(string)
  description = "Extra environment variables of the function, e.g. PUSH_POOL_TICK_BATCH_SIZE or PUSH_POOL_MAX_PARALLEL_SUBMISSIONS. Do not put secrets here: use the secret ARNs."
  default     = {}

  validation {
    condition     = alltrue([for key in keys(var.environment) : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", key))])
    error_message = "environment keys must be valid environment variable names."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Days CloudWatch keeps the function's and the tasks' logs."
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "A customer managed KMS key for the queues, log groups, secrets the module creates and the function's environment. Null: AWS managed keys (SQS-managed SSE, CloudWatch Logs' default encryption, aws/secretsmanager, aws/lambda). The key's policy must let the services (logs, sqs, lambda, secretsmanager) use it."
  default     = null

  validation {
    condition     = var.kms_key_arn == null ? true : can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource the module creates."
  default     = {}
}

# ---- the orchestrator and the webhook ---------------------------------------------------------------------------

variable "orchestrator" {
  type        = string
  description = "Where pools, deployments and runs live: `local` (the embedded store, under PUSH_POOL_HOME) or `prefect` (a Prefect server or Prefect Cloud, at prefect_api_url)."
  default     = "local"

  validation {
    condition     = contains(["local", "prefect"], var.orchestrator)
    error_message = "orchestrator must be local or prefect."
  }
}

variable "prefect_api_url" {
  type        = string
  description = "PREFECT_API_URL when orchestrator is `prefect`, e.g. https://api.prefect.cloud/api/accounts/<id>/workspaces/<id>."
  default     = null

  validation {
    condition     = var.prefect_api_url == null ? true : can(regex("^https?://", var.prefect_api_url))
    error_message = "prefect_api_url must be an http(s) URL."
  }
}

variable "prefect_work_pools" {
  type        = list(string)
  description = "With orchestrator `prefect`: the work pools this function serves (PUSH_POOL_PREFECT_WORK_POOLS). Empty: every push pool of a self-hosted server; required on Prefect Cloud."
  default     = []

  validation {
    condition     = alltrue([for pool in var.prefect_work_pools : can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", pool))])
    error_message = "prefect_work_pools must list work pool names."
  }
}

variable "orchestrator_api_key_secret_arn" {
  type        = string
  description = "Secrets Manager secret holding the orchestrator's API key (its SecretString is the key). The function exports it as PREFECT_API_KEY; tasks receive it by reference through the task execution role. Null: no API key (a self-hosted server without auth)."
  default     = null

  validation {
    condition     = var.orchestrator_api_key_secret_arn == null ? true : can(regex("^arn:aws[a-z-]*:secretsmanager:", var.orchestrator_api_key_secret_arn))
    error_message = "orchestrator_api_key_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "orchestrator_auth_string_secret_arn" {
  type        = string
  description = "Secrets Manager secret holding the basic-auth string (user:password) of a self-hosted Prefect server behind basic auth. The function exports it as PREFECT_API_AUTH_STRING; tasks receive it by reference through the task execution role. Null: no basic auth."
  default     = null

  validation {
    condition     = var.orchestrator_auth_string_secret_arn == null ? true : can(regex("^arn:aws[a-z-]*:secretsmanager:", var.orchestrator_auth_string_secret_arn))
    error_message = "orchestrator_auth_string_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "webhook_secret_arn" {
  type        = string
  description = "Secrets Manager secret holding the webhook's shared secret (SecretString). Null: the module creates one with a random value (which then lives in the Terraform state: keep the state encrypted and private)."
  default     = null

  validation {
    condition     = var.webhook_secret_arn == null ? true : can(regex("^arn:aws[a-z-]*:secretsmanager:", var.webhook_secret_arn))
    error_message = "webhook_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "create_function_url" {
  type        = bool
  description = "Give the function a URL for the webhook (Prefect automations' call-webhook action, curl). Without it, runs are still submitted by the tick."
  default     = true
}

variable "function_url_auth_type" {
  type        = string
  description = "NONE: anyone may reach the URL and the function authenticates each request with the webhook secret (bearer token or HMAC signature), which is what Prefect automations can send. AWS_IAM: callers must sign requests with SigV4."
  default     = "NONE"

  validation {
    condition     = contains(["NONE", "AWS_IAM"], var.function_url_auth_type)
    error_message = "function_url_auth_type must be NONE or AWS_IAM."
  }
}

# ---- the run queue and the tick ---------------------------------------------------------------------------------

variable "tick_schedule_expression" {
  type        = string
  description = "EventBridge Scheduler expression of the tick, the safety net under every other trigger (it also submits runs nothing else announced)."
  default     = "rate(1 minute)"

  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.tick_schedule_expression))
    error_message = "tick_schedule_expression must be a rate(...) or cron(...) expression."
  }
}

variable "queue_max_receive_count" {
  type        = number
  description = "Deliveries of a run message before SQS moves it to the dead-letter queue."
  default     = 5

  validation {
    condition     = var.queue_max_receive_count >= 1 && var.queue_max_receive_count <= 1000
    error_message = "queue_max_receive_count must be between 1 and 1000."
  }
}

variable "queue_batch_size" {
  type        = number
  description = "Messages per invocation from the run queue (handled in parallel, PUSH_POOL_MAX_PARALLEL_SUBMISSIONS at a time)."
  default     = 10

  validation {
    condition     = var.queue_batch_size >= 1 && var.queue_batch_size <= 10
    error_message = "queue_batch_size must be between 1 and 10."
  }
}

variable "queue_maximum_concurrency" {
  type        = number
  description = "Most concurrent invocations the run queue drives; a burst beyond ECS's launch rate only meets throttling sooner with more."
  default     = 5

  validation {
    condition     = var.queue_maximum_concurrency >= 2 && var.queue_maximum_concurrency <= 1000
    error_message = "queue_maximum_concurrency must be between 2 and 1000."
  }
}

# ---- ECS --------------------------------------------------------------------------------------------------------

variable "create_cluster" {
  type        = bool
  description = "Create an ECS cluster (Fargate and Fargate Spot capacity providers) named after the function; false uses cluster_name."
  default     = true
}

variable "cluster_name" {
  type        = string
  description = "Name of an existing ECS cluster, when create_cluster is false."
  default     = null

  validation {
    condition     = var.cluster_name == null ? true : can(regex("^[A-Za-z0-9_-]{1,255}$", var.cluster_name))
    error_message = "cluster_name must be a cluster name (letters, digits, hyphens, underscores), not an ARN."
  }
}

variable "container_insights" {
  type        = bool
  description = "Enable CloudWatch Container Insights on the created cluster."
  default     = true
}

variable "task_definition_family_prefixes" {
  type        = list(string)
  description = "Task definition families the function may register and run, by prefix. push-pools names families `<family or push-pools_<pool>>-<content hash>`; add the families of templates that set `family` or `task_definition_arn`."
  default     = ["push-pools_"]

  validation {
    condition     = length(var.task_definition_family_prefixes) > 0 && alltrue([for prefix in var.task_definition_family_prefixes : can(regex("^[A-Za-z0-9_-]+$", prefix))])
    error_message = "task_definition_family_prefixes must list one or more family prefixes (letters, digits, hyphens, underscores; no wildcards)."
  }
}

variable "subnet_ids" {
  type        = list(string)
  description = "Subnets for the tasks (awsvpc). Empty: tasks use the default VPC's subnets, which the function looks up (ec2:DescribeVpcs and ec2:DescribeSubnets are then granted)."
  default     = []
}

variable "security_group_ids" {
  type        = list(string)
  description = "Security groups for the tasks; empty uses the VPC's default security group."
  default     = []
}

variable "assign_public_ip" {
  type        = bool
  description = "Give Fargate tasks a public IP (needed in public subnets without a NAT gateway to pull images and reach the orchestrator)."
  default     = true
}

variable "create_task_role" {
  type        = bool
  description = "Create a task role (no permissions attached: attach what your flows need to the role named by the output) and use it as the pool's default task_role_arn."
  default     = true
}

variable "task_role_arns" {
  type        = list(string)
  description = "Other roles flows may run as (the function may pass them to ECS)."
  default     = []

  validation {
    condition     = alltrue([for arn in var.task_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])
    error_message = "task_role_arns must be IAM role ARNs."
  }
}

variable "execution_role_arn" {
  type        = string
  description = "An existing task execution role. Null: the module creates one that can pull images (from ecr_repository_arns), write the tasks' logs and read the orchestrator API key secret."
  default     = null

  validation {
    condition     = var.execution_role_arn == null ? true : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", var.execution_role_arn))
    error_message = "execution_role_arn must be an IAM role ARN."
  }
}

variable "ecr_repository_arns" {
  type        = list(string)
  description = "ECR repositories the created execution role may pull images from. Empty: no ECR access (public registries need none)."
  default     = []

  validation {
    condition     = alltrue([for arn in var.ecr_repository_arns : can(regex("^arn:aws[a-z-]*:ecr:", arn))])
    error_message = "ecr_repository_arns must be ECR repository ARNs."
  }
}

# ---- networking of the function (needed for EFS) ----------------------------------------------------------------

variable "function_subnet_ids" {
  type        = list(string)
  description = "Subnets to attach the function to (required with efs_access_point_arn). They need a route to the AWS APIs (NAT gateway or VPC endpoints for ECS, SQS, Secrets Manager, EC2) and to the orchestrator."
  default     = []
}

variable "function_security_group_ids" {
  type        = list(string)
  description = "Security groups of the function when function_subnet_ids is set."
  default     = []
}

variable "efs_access_point_arn" {
  type        = string
  description = "An EFS access point to mount as PUSH_POOL_HOME, so every instance of the function shares one embedded store (orchestrator `local`). Null: PUSH_POOL_HOME is /tmp, private to each instance — see the README."
  default     = null

  validation {
    condition     = var.efs_access_point_arn == null ? true : can(regex("^arn:aws[a-z-]*:elasticfilesystem:", var.efs_access_point_arn))
    error_message = "efs_access_point_arn must be an EFS access point ARN."
  }
}
