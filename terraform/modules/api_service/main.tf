# The scoring API: Fargate tasks in private subnets behind an internet-facing load
# balancer that terminates TLS (HTTPS only) and a WAF (AWS managed rules and a per-IP rate
# limit). Clients authenticate with FRAUD_API_KEY, generated here into Secrets Manager.

resource "random_password" "api_key" {
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "api_key" {
  #checkov:skip=CKV2_AWS_57:The API key is shared with clients; rotating it is a coordinated change (new value, clients updated, redeploy), documented in README.
  name        = "${var.name}/scoring-api/api-key"
  description = "Key clients of the scoring API send in X-API-Key"
  kms_key_id  = var.kms_key_arn
}

resource "aws_secretsmanager_secret_version" "api_key" {
  secret_id     = aws_secretsmanager_secret.api_key.id
  secret_string = random_password.api_key.result
}

# ----------------------------------------------------------------------------- load balancer

resource "aws_lb" "this" {
  name                       = "${var.name}-api"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [var.alb_security_group_id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  desync_mitigation_mode     = "strictest"
  idle_timeout               = 30

  access_logs {
    bucket  = var.access_log_bucket
    prefix  = "alb"
    enabled = true
  }
}

resource "aws_lb_target_group" "api" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the load balancer; the hop to the tasks stays in private subnets and is limited by security groups to the load balancer.
  name                 = "${var.name}-api"
  port                 = 8080
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 15

  # Readiness of this task: a model is loaded. /readyz does not fail when Redis is down
  # (a shared dependency: failing every task's check would drain and replace the whole
  # fleet, which would come back cold); scoring answers 503 meanwhile. The container's
  # own health check (liveness, restart on failure) is /healthz, below.
  health_check {
    path                = "/readyz"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

# ----------------------------------------------------------------------------- WAF

locals {
  # The per-IP rate rule, derived from the load the service is sized for: one client (a
  # processor behind one NAT address) may send the whole target rate for the rule's
  # 5-minute window with 50 % headroom; more than that is abuse, not traffic we planned.
  # Default 1000 requests/s -> 450,000 per 5 minutes (the rule used to be 20,000: 67/s).
  rate_limit_per_5min = ceil(var.target_rps * 300 * 1.5)
  # The API's body cap (inference_pipeline/settings.py: 1 KiB per transaction of the
  # largest batch, plus 1 KiB), for the record; the API enforces it with a 413.
  body_limit_bytes = var.batch_max_txns * 1024 + 1024
}

resource "aws_wafv2_web_acl" "this" {
  name        = "${var.name}-api"
  description = "Scoring API: AWS managed rules and a per-IP rate limit"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "aws-common"
    priority = 10
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
        # This rule blocks bodies over 8 KB: batches of more than about 40 transactions,
        # which the API accepts up to local.body_limit_bytes. An ALB's WAF inspects only
        # the first 8 KB of a body, so it cannot enforce a larger cap: the API does, with a
        # 413 before the body is read or the key checked. Counted, not blocked.
        rule_action_override {
          name = "SizeRestrictions_BODY"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-api-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-known-bad-inputs"
    priority = 20
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-api-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  # Anonymising proxies and Tor are blocked; requests from hosting providers are only
  # counted, because payment processors legitimately call from cloud networks.
  rule {
    name     = "aws-anonymous-ip"
    priority = 30
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"
        rule_action_override {
          name = "HostingProviderIPList"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-api-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "rate-limit-per-ip"
    priority = 40
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = local.rate_limit_per_5min
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-api-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-api"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "this" {
  resource_arn = aws_lb.this.arn
  web_acl_arn  = aws_wafv2_web_acl.this.arn
}

# WAF requires the "aws-waf-logs-" prefix on its log group.
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${var.name}-api"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  # The API key header never reaches the logs.
  redacted_fields {
    single_header {
      name = "x-api-key"
    }
  }
}

# ----------------------------------------------------------------------------- service

module "service" {
  source = "../ecs_service"

  name               = "${var.name}-scoring-api"
  region             = var.region
  cluster_arn        = var.cluster_arn
  image              = var.image
  cpu                = var.cpu
  memory             = var.memory
  desired_count      = var.min_tasks
  subnet_ids         = var.private_subnet_ids
  security_group_ids = [var.security_group_id]
  execution_role_arn = var.execution_role_arn
  task_role_arn      = var.task_role_arn
  kms_key_arn        = var.kms_key_arn
  log_retention_days = var.log_retention_days
  container_port     = 8080
  target_group_arn   = aws_lb_target_group.api.arn
  environment = merge(var.environment, {
    FRAUD_API_AUTH_DISABLED = "false"
    # The Feast repo the image holds (docker/api.Dockerfile).
    FEAST_REPO_PATH = "/app/feature_repo"
  })
  secrets = merge(var.secrets, {
    FRAUD_API_KEY = aws_secretsmanager_secret.api_key.arn
  })
  health_check_command = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]

  depends_on = [aws_lb_listener.https]
}

resource "aws_appautoscaling_target" "api" {
  service_namespace  = "ecs"
  resource_id        = "service/${var.cluster_name}/${module.service.service_name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-scoring-api-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 120
    scale_out_cooldown = 30
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
