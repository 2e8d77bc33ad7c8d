# Feast's online store: a Redis replication group with a primary and replicas in separate
# zones, automatic failover, TLS in transit, an AUTH token and encryption at rest.
# The token is generated here and kept in Secrets Manager together with the connection
# string in Feast's format, which the tasks receive as REDIS_CONNECTION_STRING.

resource "random_password" "auth_token" {
  # ElastiCache allows 16-128 printable characters; letters and digits also keep the
  # token safe inside Feast's "key=value,key=value" connection string.
  length  = 64
  special = false
}

resource "aws_elasticache_subnet_group" "this" {
  name       = "${var.name}-redis"
  subnet_ids = var.subnet_ids
}

resource "aws_elasticache_parameter_group" "this" {
  name   = "${var.name}-redis7"
  family = "redis7"

  # An online store must never silently drop features under memory pressure.
  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
}

resource "aws_cloudwatch_log_group" "slow_log" {
  name              = "/elasticache/${var.name}/slow-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = "${var.name}-online"
  description          = "${var.name}: Feast online store"
  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.this.name
  num_cache_clusters   = var.replicas + 1

  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [var.security_group_id]

  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = random_password.auth_token.result
  auth_token_update_strategy = "ROTATE"

  auto_minor_version_upgrade = true
  snapshot_retention_limit   = 7
  snapshot_window            = "03:00-04:00"
  maintenance_window         = "sun:05:00-sun:06:00"
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.slow_log.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }
}

resource "aws_secretsmanager_secret" "connection" {
  #checkov:skip=CKV2_AWS_57:Rotating an ElastiCache AUTH token needs a ROTATE/SET sequence on the replication group; it is done by re-applying with a new token (README), not by a Lambda rotation.
  name        = "${var.name}/redis"
  description = "AUTH token and Feast connection string of the online store"
  kms_key_id  = var.kms_key_arn
}

resource "aws_secretsmanager_secret_version" "connection" {
  secret_id = aws_secretsmanager_secret.connection.id
  secret_string = jsonencode({
    auth_token        = random_password.auth_token.result
    connection_string = "${aws_elasticache_replication_group.this.primary_endpoint_address}:6379,password=${random_password.auth_token.result},ssl=true"
  })
}
