output "task_definition_arn" {
  description = "ARN of the task definition (the revision this apply registered)."
  value       = aws_ecs_task_definition.this.arn
}

output "task_definition_family" {
  description = "Family of the task definition, for `aws ecs run-task --task-definition`."
  value       = aws_ecs_task_definition.this.family
}

output "service_name" {
  description = "Name of the ECS service; null when create_service is false."
  value       = var.create_service ? aws_ecs_service.this[0].name : null
}

output "log_group_name" {
  description = "CloudWatch log group of the containers."
  value       = aws_cloudwatch_log_group.this.name
}
