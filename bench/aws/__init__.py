"""Benchmarks of the AWS backend against moto: cloud calls per run, and a burst against ECS's rate limits."""
