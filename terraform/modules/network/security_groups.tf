# One security group per tier; every rule names its peer group, so the allowed flows read
# as the architecture:
#   clients  -> alb:443 -> api:8080
#   api      -> redis:6379, postgres:5432 (Feast registry), mlflow:5000
#   airflow  -> redis:6379, postgres:5432, mlflow:5000, airflow:8080 (Execution API)
#   mlflow   -> postgres:5432
#   tasks    -> endpoints:443 and S3 (gateway prefix list):443

locals {
  tiers = {
    alb       = "Load balancer in front of the scoring API"
    api       = "Scoring API tasks"
    airflow   = "Airflow tasks (api-server, scheduler, dag-processor, triggerer)"
    mlflow    = "MLflow tracking server tasks"
    redis     = "ElastiCache Redis online store"
    postgres  = "RDS PostgreSQL (Airflow, MLflow, Feast registry)"
    endpoints = "Interface VPC endpoints"
  }

  # [source tier, destination tier, port, description]
  tier_flows = [
    ["alb", "api", 8080, "Load balancer to the scoring API"],
    ["api", "redis", 6379, "Scoring API reads online features"],
    ["api", "postgres", 5432, "Scoring API reads the Feast registry"],
    ["api", "mlflow", 5000, "Scoring API loads the champion model"],
    ["airflow", "redis", 6379, "Materialization writes online features"],
    ["airflow", "postgres", 5432, "Airflow metadata and Feast registry"],
    ["airflow", "mlflow", 5000, "Training logs runs and registers models"],
    ["airflow", "airflow", 8080, "Task processes call the Airflow Execution API"],
    ["mlflow", "postgres", 5432, "MLflow tracking metadata"],
  ]

  # Tiers whose tasks call AWS APIs (endpoints) and S3.
  aws_api_clients = ["api", "airflow", "mlflow"]
}

resource "aws_security_group" "tier" {
  #checkov:skip=CKV2_AWS_5:Attached outside this module (ALB, ECS services, ElastiCache, RDS) through the security_group_ids output, which the graph check does not follow.
  for_each = local.tiers

  name        = "${var.name}-${each.key}"
  description = each.value
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-${each.key}" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = toset(var.api_allowed_cidrs)

  security_group_id = aws_security_group.tier["alb"].id
  description       = "HTTPS from allowed clients"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "flow" {
  for_each = { for f in local.tier_flows : "${f[0]}-to-${f[1]}" => f }

  security_group_id            = aws_security_group.tier[each.value[0]].id
  referenced_security_group_id = aws_security_group.tier[each.value[1]].id
  description                  = each.value[3]
  ip_protocol                  = "tcp"
  from_port                    = each.value[2]
  to_port                      = each.value[2]
}

resource "aws_vpc_security_group_ingress_rule" "flow" {
  for_each = { for f in local.tier_flows : "${f[0]}-to-${f[1]}" => f }

  security_group_id            = aws_security_group.tier[each.value[1]].id
  referenced_security_group_id = aws_security_group.tier[each.value[0]].id
  description                  = each.value[3]
  ip_protocol                  = "tcp"
  from_port                    = each.value[2]
  to_port                      = each.value[2]
}

resource "aws_vpc_security_group_egress_rule" "to_endpoints" {
  for_each = toset(local.aws_api_clients)

  security_group_id            = aws_security_group.tier[each.value].id
  referenced_security_group_id = aws_security_group.tier["endpoints"].id
  description                  = "AWS APIs through interface endpoints"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_egress_rule" "to_s3" {
  for_each = toset(local.aws_api_clients)

  security_group_id = aws_security_group.tier[each.value].id
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
  description       = "S3 through the gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "endpoints" {
  security_group_id = aws_security_group.tier["endpoints"].id
  description       = "HTTPS from inside the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}
