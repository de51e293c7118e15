# Least privilege, action by action. The function's grants equal what its code calls (tests record the calls and
# compare: tests/integration/aws/test_iam_policy.py) plus what AWS authorises on its behalf: its log stream, the
# queue's event source mapping, tag-on-create and PassRole for ECS, and the customer managed key if any.

# ---- the function -----------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "function_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "function" {
  name               = "${var.name}-function"
  description        = "push-pools function: submits, reads and stops the ECS tasks of flow runs"
  assume_role_policy = data.aws_iam_policy_document.function_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "function" {
  name   = "push-pools"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

data "aws_iam_policy_document" "function" {
  #checkov:skip=CKV_AWS_111:ecs:RegisterTaskDefinition and ecs:DescribeTaskDefinition support no resource-level permissions (Resource must be "*"); every other write is scoped to the cluster, its families and roles.
  #checkov:skip=CKV_AWS_356:Same: the two task definition actions and ec2:Describe* accept only "*".

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }

  statement {
    sid       = "RunTasksOnTheCluster"
    actions   = ["ecs:RunTask"]
    resources = [for prefix in var.task_definition_family_prefixes : "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${prefix}*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }

  statement {
    sid       = "TaskDefinitionsByContent"
    actions   = ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid       = "ReadAndStopTheClustersTasks"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${local.cluster_name}/*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [local.cluster_arn]
    }
  }

  statement {
    sid       = "ReadTheTasksOutput"
    actions   = ["logs:GetLogEvents"]
    resources = ["${aws_cloudwatch_log_group.tasks.arn}:*"]
  }

  statement {
    sid     = "TagTasksAsTheyStart"
    actions = ["ecs:TagResource"]
    resources = concat(
      ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${local.cluster_name}/*"],
      [for prefix in var.task_definition_family_prefixes : "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${prefix}*"],
    )

    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask", "RegisterTaskDefinition"]
    }
  }

  statement {
    sid       = "PassTheTaskRoles"
    actions   = ["iam:PassRole"]
    resources = concat([local.execution_role_arn], local.task_role_arns)

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "ReadItsSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = concat([local.webhook_secret_arn], local.orchestrator_secret_arns)
  }

  statement {
    sid       = "RunQueue"
    actions   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.runs.arn]
  }

  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letters.arn]
  }

  dynamic "statement" {
    for_each = local.discovers_subnets ? [1] : []
    content {
      sid       = "FindTheDefaultVpcsSubnets"
      actions   = ["ec2:DescribeVpcs", "ec2:DescribeSubnets"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn != null ? [1] : []
    content {
      sid       = "UseTheCustomerManagedKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
    }
  }
}

# Only for a function in a VPC (EFS): its network interfaces, and the file system through the access point.
resource "aws_iam_role_policy" "function_network" {
  count  = length(var.function_subnet_ids) > 0 ? 1 : 0
  name   = "push-pools-network"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function_network.json
}

data "aws_iam_policy_document" "function_network" {
  #checkov:skip=CKV_AWS_111:Lambda manages the network interfaces of a VPC function with these actions, which accept only "*".
  #checkov:skip=CKV_AWS_356:Same: the ENI actions accept only "*".
  statement {
    sid = "VpcNetworkInterfaces"
    actions = [
      "ec2:CreateNetworkInterface",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DeleteNetworkInterface",
      "ec2:AssignPrivateIpAddresses",
      "ec2:UnassignPrivateIpAddresses",
    ]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.efs_access_point_arn != null ? [1] : []
    content {
      sid       = "MountTheStore"
      actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
      resources = ["arn:${local.partition}:elasticfilesystem:${local.region}:${local.account_id}:file-system/*"]

      condition {
        test     = "StringEquals"
        variable = "elasticfilesystem:AccessPointArn"
        values   = [var.efs_access_point_arn]
      }
    }
  }
}

# ---- the schedule -----------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "scheduler_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name}-tick"
  description        = "push-pools: lets EventBridge Scheduler invoke the function for the tick"
  assume_role_policy = data.aws_iam_policy_document.scheduler_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "invoke-push-pools"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this.arn]
  }
}

# ---- the tasks --------------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "task_execution" {
  count              = var.execution_role_arn == null ? 1 : 0
  name               = "${var.name}-task-execution"
  description        = "push-pools tasks' execution role: pull the image, write logs, read the API-key secret"
  assume_role_policy = data.aws_iam_policy_document.tasks_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "task_execution" {
  count  = var.execution_role_arn == null ? 1 : 0
  name   = "push-pools-task-execution"
  role   = aws_iam_role.task_execution[0].id
  policy = data.aws_iam_policy_document.task_execution.json
}

data "aws_iam_policy_document" "task_execution" {
  #checkov:skip=CKV_AWS_356:ecr:GetAuthorizationToken accepts only "*" (it is granted only when ecr_repository_arns is set).
  statement {
    sid       = "WriteTheTasksLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.tasks.arn}:*"]
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [1] : []
    content {
      sid       = "EcrLogin"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [1] : []
    content {
      sid       = "PullImages"
      actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
      resources = var.ecr_repository_arns
    }
  }

  dynamic "statement" {
    for_each = length(local.orchestrator_secret_arns) > 0 ? [1] : []
    content {
      sid       = "ReadTheOrchestratorCredentials"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.orchestrator_secret_arns
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn != null ? [1] : []
    content {
      sid       = "DecryptWithTheCustomerManagedKey"
      actions   = ["kms:Decrypt"]
      resources = [var.kms_key_arn]
    }
  }
}

resource "aws_iam_role" "task" {
  count              = var.create_task_role ? 1 : 0
  name               = "${var.name}-task"
  description        = "push-pools flows run as this role: attach what they need (it has no permissions of its own)"
  assume_role_policy = data.aws_iam_policy_document.tasks_trust.json
  tags               = var.tags
}
