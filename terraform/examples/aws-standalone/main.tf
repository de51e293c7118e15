# push-pools with its embedded store and no orchestrator, on Lambda. The store is one SQLite file; Lambda's /tmp is
# private to each instance of the function, so the store lives on EFS, mounted as PUSH_POOL_HOME, and the function
# runs one instance at a time (reserved concurrency 1): SQLite cannot share its write-ahead log between hosts. See
# README.md for what this means, and for how the CLI reaches the store.

data "aws_vpc" "this" {
  id = var.vpc_id
}

resource "aws_security_group" "function" {
  #checkov:skip=CKV2_AWS_5:Attached to the function through the module (function_security_group_ids), which checkov does not follow.
  name_prefix = "push-pools-function-"
  description = "push-pools function: HTTPS out (AWS APIs, images), NFS to its store"
  vpc_id      = var.vpc_id

  egress {
    description = "AWS APIs over HTTPS"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"] #checkov:skip=CKV_AWS_382:The function calls regional AWS endpoints (ECS, SQS, Secrets Manager, EC2) whose addresses are not fixed.
  }

  egress {
    description = "NFS to the store's mount targets"
    from_port   = 2049
    to_port     = 2049
    protocol    = "tcp"
    cidr_blocks = [data.aws_vpc.this.cidr_block]
  }
}

resource "aws_security_group" "store" {
  name_prefix = "push-pools-store-"
  description = "push-pools store (EFS): NFS from the function only"
  vpc_id      = var.vpc_id

  ingress {
    description     = "NFS from the push-pools function"
    from_port       = 2049
    to_port         = 2049
    protocol        = "tcp"
    security_groups = [aws_security_group.function.id]
  }
}

resource "aws_efs_file_system" "store" {
  #checkov:skip=CKV_AWS_184:Encrypted at rest with the aws/elasticfilesystem key; use a customer managed key (kms_key_id) if your policy requires one.
  creation_token  = "push-pools-store"
  encrypted       = true
  throughput_mode = "elastic"

  tags = { Name = "push-pools-store" }
}

resource "aws_efs_backup_policy" "store" {
  file_system_id = aws_efs_file_system.store.id

  backup_policy {
    status = "ENABLED"
  }
}

resource "aws_efs_mount_target" "store" {
  for_each        = toset(var.private_subnet_ids)
  file_system_id  = aws_efs_file_system.store.id
  subnet_id       = each.value
  security_groups = [aws_security_group.store.id]
}

resource "aws_efs_access_point" "store" {
  file_system_id = aws_efs_file_system.store.id

  posix_user {
    uid = 1000
    gid = 1000
  }

  root_directory {
    path = "/push-pools"

    creation_info {
      owner_uid   = 1000
      owner_gid   = 1000
      permissions = "0750"
    }
  }
}

module "push_pools" {
  source = "../../modules/aws"

  name         = "push-pools"
  package_path = var.package_path
  orchestrator = "local"

  function_subnet_ids         = var.private_subnet_ids
  function_security_group_ids = [aws_security_group.function.id]
  efs_access_point_arn        = aws_efs_access_point.store.arn
  reserved_concurrency        = 1
  queue_maximum_concurrency   = 2

  subnet_ids          = var.private_subnet_ids
  assign_public_ip    = false
  ecr_repository_arns = var.ecr_repository_arns

  tags = { "managed-by" = "terraform", "app" = "push-pools" }

  depends_on = [aws_efs_mount_target.store]
}
