terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.28 adds `invoked_via_function_url` to aws_lambda_permission: public function URLs created since
      # October 2025 need lambda:InvokeFunction granted that way, besides lambda:InvokeFunctionUrl.
      version = ">= 6.28, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5, < 4.0"
    }
  }
}
