data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  partition    = data.aws_partition.current.partition
  region       = data.aws_region.current.region
  account_id   = data.aws_caller_identity.current.account_id
  cluster_name = var.create_cluster ? aws_ecs_cluster.this[0].name : var.cluster_name
  cluster_arn  = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:cluster/${local.cluster_name}"

  webhook_secret_arn = var.webhook_secret_arn != null ? var.webhook_secret_arn : aws_secretsmanager_secret.webhook[0].arn
  execution_role_arn = var.execution_role_arn != null ? var.execution_role_arn : aws_iam_role.task_execution[0].arn
  task_role_arn      = var.create_task_role ? aws_iam_role.task[0].arn : (length(var.task_role_arns) > 0 ? var.task_role_arns[0] : null)
  task_role_arns     = concat(var.create_task_role ? [aws_iam_role.task[0].arn] : [], var.task_role_arns)
  discovers_subnets  = length(var.subnet_ids) == 0
  home               = var.efs_access_point_arn != null ? "/mnt/push-pools" : "/tmp/push-pools"
  tasks_log_group    = "/push-pools/${var.name}/tasks"

  orchestrator_secret_arns = compact([var.orchestrator_api_key_secret_arn, var.orchestrator_auth_string_secret_arn])

  function_environment = merge(
    {
      PUSH_POOL_HOME                  = local.home
      PUSH_POOL_ORCHESTRATOR          = var.orchestrator
      PUSH_POOL_WEBHOOK_SECRET_ARN    = local.webhook_secret_arn
      PUSH_POOL_QUEUE_URL             = aws_sqs_queue.runs.url
      PUSH_POOL_TICK_INTERVAL_SECONDS = "60"
    },
    var.efs_access_point_arn != null ? { PUSH_POOL_STORE_JOURNAL_MODE = "delete" } : {},
    var.orchestrator == "prefect" ? { PREFECT_API_URL = var.prefect_api_url } : {},
    var.orchestrator == "prefect" && length(var.prefect_work_pools) > 0 ? { PUSH_POOL_PREFECT_WORK_POOLS = jsonencode(var.prefect_work_pools) } : {},
    var.orchestrator_api_key_secret_arn != null ? { PUSH_POOL_ORCHESTRATOR_API_KEY_SECRET_ARN = var.orchestrator_api_key_secret_arn } : {},
    var.orchestrator_auth_string_secret_arn != null ? { PUSH_POOL_ORCHESTRATOR_AUTH_STRING_SECRET_ARN = var.orchestrator_auth_string_secret_arn } : {},
    var.environment,
  )

  # What `push-pool create --type ecs` needs to submit runs into this deployment.
  pool_defaults = merge(
    {
      cluster                   = local.cluster_name
      execution_role_arn        = local.execution_role_arn
      configure_cloudwatch_logs = true
      cloudwatch_logs_options   = { "awslogs-group" = local.tasks_log_group, "awslogs-create-group" = "false" }
    },
    local.task_role_arn != null ? { task_role_arn = local.task_role_arn } : {},
    var.orchestrator_api_key_secret_arn != null ? { prefect_api_key_secret_arn = var.orchestrator_api_key_secret_arn } : {},
    var.orchestrator_auth_string_secret_arn != null ? { prefect_api_auth_string_secret_arn = var.orchestrator_auth_string_secret_arn } : {},
    local.discovers_subnets ? {} : {
      network_configuration = merge(
        { subnets = var.subnet_ids, securityGroups = var.security_group_ids },
        var.assign_public_ip ? { assignPublicIp = "ENABLED" } : { assignPublicIp = "DISABLED" },
      )
    },
  )
}

# ---- the function -------------------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158:Encrypted with CloudWatch Logs' own key unless var.kms_key_arn names a customer managed key; the function logs no secrets.
  #checkov:skip=CKV_AWS_338:Retention is a cost choice left to var.log_retention_days (30 days by default); a year of dispatch logs is rarely worth keeping.
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_272:The package is built locally by `push-pool package aws`; code signing needs a Signer profile this module cannot assume. Attach one outside the module if your organisation requires it.
  #checkov:skip=CKV_AWS_117:The function needs only AWS APIs and the orchestrator's HTTPS endpoint; set var.function_subnet_ids to attach it to a VPC (required with EFS).
  #checkov:skip=CKV_AWS_115:Concurrency is capped where it matters, on the run queue (var.queue_maximum_concurrency); var.reserved_concurrency reserves it when wanted.
  #checkov:skip=CKV_AWS_173:Environment variables hold no secrets (secret ARNs only); they are encrypted with the aws/lambda key, or var.kms_key_arn when set.
  function_name                  = var.name
  description                    = "push-pools: submits scheduled flow runs to ECS (webhook, run queue, tick, task events)"
  role                           = aws_iam_role.function.arn
  runtime                        = "python3.11"
  handler                        = "lambda_function.handler"
  filename                       = var.package_path
  source_code_hash               = filebase64sha256(var.package_path)
  architectures                  = [var.architecture]
  memory_size                    = var.memory_size
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency == null ? -1 : var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn
  tags                           = var.tags

  environment {
    variables = local.function_environment
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function.name
  }

  tracing_config {
    mode = "PassThrough"
  }

  # Asynchronous invocations (task events, the schedule) that fail all Lambda's retries are kept here.
  dead_letter_config {
    target_arn = aws_sqs_queue.dead_letters.arn
  }

  dynamic "vpc_config" {
    for_each = length(var.function_subnet_ids) > 0 ? [1] : []
    content {
      subnet_ids         = var.function_subnet_ids
      security_group_ids = var.function_security_group_ids
    }
  }

  dynamic "file_system_config" {
    for_each = var.efs_access_point_arn != null ? [1] : []
    content {
      arn              = var.efs_access_point_arn
      local_mount_path = local.home
    }
  }

  lifecycle {
    precondition {
      condition     = var.orchestrator != "prefect" || var.prefect_api_url != null
      error_message = "orchestrator = \"prefect\" needs prefect_api_url."
    }
    precondition {
      condition     = var.efs_access_point_arn == null || length(var.function_subnet_ids) > 0
      error_message = "Mounting EFS (efs_access_point_arn) needs the function in a VPC: set function_subnet_ids."
    }
    precondition {
      condition     = var.create_cluster || var.cluster_name != null
      error_message = "Set cluster_name when create_cluster is false."
    }
  }

  depends_on = [aws_iam_role_policy.function, aws_iam_role_policy.function_network]
}

resource "aws_lambda_function_url" "webhook" {
  #checkov:skip=CKV_AWS_258:The webhook authenticates every request itself with the shared secret (bearer token or HMAC signature with replay window), which is what Prefect automations can send; they cannot sign SigV4. Set function_url_auth_type = "AWS_IAM" for SigV4 callers.
  count              = var.create_function_url ? 1 : 0
  function_name      = aws_lambda_function.this.function_name
  authorization_type = var.function_url_auth_type
}

# Public URLs need both grants (lambda:InvokeFunction only when invoked through the URL); the webhook itself
# refuses any request without the shared secret (README: "Why the function URL has no AWS auth").
resource "aws_lambda_permission" "function_url" {
  #checkov:skip=CKV_AWS_364:A function URL is invoked by its callers, not by an AWS service with a source ARN.
  count                  = var.create_function_url && var.function_url_auth_type == "NONE" ? 1 : 0
  statement_id           = "push-pools-webhook-url"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "function_url_invoke" {
  #checkov:skip=CKV_AWS_364:Scoped to invocations through the function URL (invoked_via_function_url); there is no source ARN.
  count                    = var.create_function_url && var.function_url_auth_type == "NONE" ? 1 : 0
  statement_id             = "push-pools-webhook-invoke"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.this.function_name
  principal                = "*"
  invoked_via_function_url = true
}

# ---- the webhook secret ---------------------------------------------------------------------------------------------

resource "random_password" "webhook" {
  count   = var.webhook_secret_arn == null ? 1 : 0
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "webhook" {
  #checkov:skip=CKV2_AWS_57:A shared webhook secret cannot rotate by itself: its callers (Prefect automations) hold a copy. Rotate it by writing a new value and updating the callers.
  count       = var.webhook_secret_arn == null ? 1 : 0
  name_prefix = "${var.name}-webhook-"
  description = "push-pools webhook shared secret: send it as a bearer token or sign requests with it (HMAC-SHA256)"
  kms_key_id  = var.kms_key_arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "webhook" {
  count         = var.webhook_secret_arn == null ? 1 : 0
  secret_id     = aws_secretsmanager_secret.webhook[0].id
  secret_string = random_password.webhook[0].result
}

# ---- the run queue --------------------------------------------------------------------------------------------------

resource "aws_sqs_queue" "dead_letters" {
  name                      = "${var.name}-dead-letters"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn
  tags                      = var.tags
}

resource "aws_sqs_queue" "runs" {
  name                       = "${var.name}-runs"
  visibility_timeout_seconds = 6 * var.timeout_seconds
  message_retention_seconds  = 345600
  sqs_managed_sse_enabled    = var.kms_key_arn == null ? true : null
  kms_master_key_id          = var.kms_key_arn
  tags                       = var.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letters.arn
    maxReceiveCount     = var.queue_max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "dead_letters" {
  queue_url = aws_sqs_queue.dead_letters.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.runs.arn]
  })
}

resource "aws_lambda_event_source_mapping" "runs" {
  event_source_arn        = aws_sqs_queue.runs.arn
  function_name           = aws_lambda_function.this.arn
  batch_size              = var.queue_batch_size
  function_response_types = ["ReportBatchItemFailures"]
  tags                    = var.tags

  scaling_config {
    maximum_concurrency = var.queue_maximum_concurrency
  }
}

# ---- the tick -------------------------------------------------------------------------------------------------------

resource "aws_scheduler_schedule" "tick" {
  #checkov:skip=CKV_AWS_297:The schedule's input is {"action": "tick"}: nothing to encrypt with a customer managed key.
  name                = "${var.name}-tick"
  description         = "push-pools tick: submits due runs, recovers orphans, stops cancelled runs"
  schedule_expression = var.tick_schedule_expression

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.this.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ action = "tick" })

    # A missed tick is replaced by the next one: no retries, no piling up.
    retry_policy {
      maximum_retry_attempts       = 0
      maximum_event_age_in_seconds = 60
    }
  }
}

# ---- ECS task state changes -------------------------------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "task_state" {
  name        = "${var.name}-task-state"
  description = "push-pools: state changes of the tasks it started (crash detection, completion)"
  tags        = var.tags

  event_pattern = jsonencode({
    source        = ["aws.ecs"]
    "detail-type" = ["ECS Task State Change"]
    detail = {
      clusterArn = [local.cluster_arn]
      startedBy  = [{ prefix = "push-pools-" }]
      lastStatus = ["RUNNING", "STOPPED"]
    }
  })
}

resource "aws_cloudwatch_event_target" "task_state" {
  rule      = aws_cloudwatch_event_rule.task_state.name
  target_id = "push-pools-function"
  arn       = aws_lambda_function.this.arn

  retry_policy {
    maximum_retry_attempts       = 20
    maximum_event_age_in_seconds = 3600
  }

  dead_letter_config {
    arn = aws_sqs_queue.dead_letters.arn
  }
}

resource "aws_lambda_permission" "task_state" {
  statement_id  = "push-pools-task-state-events"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.task_state.arn
}

# EventBridge delivers events it could not hand to the function to the dead-letter queue.
resource "aws_sqs_queue_policy" "dead_letters" {
  queue_url = aws_sqs_queue.dead_letters.id
  policy    = data.aws_iam_policy_document.dead_letters.json
}

data "aws_iam_policy_document" "dead_letters" {
  statement {
    sid       = "EventBridgeDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letters.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.task_state.arn]
    }
  }
}

# ---- the cluster and the tasks' logs -----------------------------------------------------------------------------------

resource "aws_ecs_cluster" "this" {
  count = var.create_cluster ? 1 : 0
  name  = var.name
  tags  = var.tags

  setting {
    name  = "containerInsights"
    value = var.container_insights ? "enabled" : "disabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  count              = var.create_cluster ? 1 : 0
  cluster_name       = aws_ecs_cluster.this[0].name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_cloudwatch_log_group" "tasks" {
  #checkov:skip=CKV_AWS_158:Encrypted with CloudWatch Logs' own key unless var.kms_key_arn names a customer managed key.
  #checkov:skip=CKV_AWS_338:Retention is a cost choice left to var.log_retention_days (30 days by default).
  name              = local.tasks_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}
