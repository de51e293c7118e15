"""The Lambda function's handler module (handler: lambda_function.handler). All the code is in push_pools."""

from push_pools.platforms.aws.function import handler

__all__ = ["handler"]
