output "execution_role_arn" {
  description = "ARN of the ECS task execution role shared by every task definition."
  value       = aws_iam_role.execution.arn
}

output "task_role_arns" {
  description = "ARN of each task role: api, pipelines (Airflow), mlflow."
  value       = { for k, role in aws_iam_role.task : k => role.arn }
}
