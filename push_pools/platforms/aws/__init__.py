"""AWS: ECS tasks (RunTask), the Lambda entry point, and the EventBridge task-state events it receives."""
