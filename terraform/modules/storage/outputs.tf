output "bucket_name" {
  description = "Name of the data bucket (FRAUD_S3_BUCKET)."
  value       = aws_s3_bucket.data.id
}

output "bucket_arn" {
  description = "ARN of the data bucket."
  value       = aws_s3_bucket.data.arn
}

output "log_bucket_name" {
  description = "Name of the access-log bucket (ALB logs go under alb/)."
  value       = aws_s3_bucket.logs.id
}
