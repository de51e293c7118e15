# push-pools with Prefect as the orchestrator: pools, deployments and flow runs live in Prefect (a self-hosted
# server or Prefect Cloud); the function submits their runs to ECS Fargate. The API key is a Secrets Manager
# secret: the function reads it at cold start, and tasks receive it by reference through their execution role.

# The secret is created empty, so that the key never passes through Terraform (nor its state). Put the key in it:
#   aws secretsmanager put-secret-value --secret-id "$(terraform output -raw prefect_api_key_secret_arn)" \
#     --secret-string "$PREFECT_API_KEY"
resource "aws_secretsmanager_secret" "prefect_api_key" {
  #checkov:skip=CKV_AWS_149:Encrypted with the aws/secretsmanager key; pass a customer managed key to the module (kms_key_arn) and here if your policy requires one.
  #checkov:skip=CKV2_AWS_57:A Prefect API key is rotated in Prefect (a new key), then written here; Secrets Manager cannot rotate it by itself.
  name_prefix = "push-pools-prefect-api-key-"
  description = "Prefect API key used by push-pools and by the flow runs it starts"
}

module "push_pools" {
  source = "../../modules/aws"

  name         = "push-pools"
  package_path = var.package_path

  # A self-hosted server behind basic auth: put user:password in a secret of its own and pass its ARN as
  # orchestrator_auth_string_secret_arn (the function exports it as PREFECT_API_AUTH_STRING).
  orchestrator                    = "prefect"
  prefect_api_url                 = var.prefect_api_url
  orchestrator_api_key_secret_arn = aws_secretsmanager_secret.prefect_api_key.arn
  prefect_work_pools              = var.prefect_work_pools

  ecr_repository_arns = var.ecr_repository_arns

  tags = { "managed-by" = "terraform", "app" = "push-pools" }
}
