# One containerised workload on Fargate: log group, task definition and (optionally) a
# service, registered with a load balancer and/or Cloud Map. Containers run with a
# read-only root file system unless a workload opts out; writable_paths get task-scoped
# volumes (Fargate copies the image's content and ownership of a path declared as VOLUME).

locals {
  volumes = { for path in var.writable_paths : replace(trim(path, "/"), "/", "-") => path }
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  dynamic "volume" {
    for_each = local.volumes
    content {
      name = volume.key
    }
  }

  container_definitions = jsonencode([
    merge(
      {
        name                   = var.name
        image                  = var.image
        essential              = true
        readonlyRootFilesystem = var.readonly_root_filesystem
        privileged             = false
        environment            = [for k in sort(keys(var.environment)) : { name = k, value = var.environment[k] }]
        secrets                = [for k in sort(keys(var.secrets)) : { name = k, valueFrom = var.secrets[k] }]
        mountPoints            = [for name, path in local.volumes : { sourceVolume = name, containerPath = path, readOnly = false }]
        portMappings           = var.container_port == null ? [] : [{ containerPort = var.container_port, protocol = "tcp" }]
        linuxParameters        = { initProcessEnabled = true }
        logConfiguration = {
          logDriver = "awslogs"
          options = {
            awslogs-group         = aws_cloudwatch_log_group.this.name
            awslogs-region        = var.region
            awslogs-stream-prefix = "ecs"
          }
        }
      },
      var.command == null ? {} : { command = var.command },
      var.user == null ? {} : { user = var.user },
      var.health_check_command == null ? {} : {
        healthCheck = {
          command     = var.health_check_command
          interval    = 30
          timeout     = 10
          retries     = 5
          startPeriod = 60
        }
      },
    )
  ])
}

resource "aws_service_discovery_service" "this" {
  count = var.create_service && var.namespace_id != null ? 1 : 0

  name = var.discovery_name

  dns_config {
    namespace_id   = var.namespace_id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "A"
      ttl  = 10
    }
  }

  health_check_custom_config {
    failure_threshold = 1
  }
}

resource "aws_ecs_service" "this" {
  count = var.create_service ? 1 : 0

  name                   = var.name
  cluster                = var.cluster_arn
  task_definition        = aws_ecs_task_definition.this.arn
  desired_count          = var.desired_count
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  enable_execute_command = var.enable_execute_command
  propagate_tags         = "SERVICE"

  health_check_grace_period_seconds = var.target_group_arn == null ? null : var.health_check_grace_period_seconds

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = var.target_group_arn == null ? [] : [var.target_group_arn]
    content {
      target_group_arn = load_balancer.value
      container_name   = var.name
      container_port   = var.container_port
    }
  }

  dynamic "service_registries" {
    for_each = aws_service_discovery_service.this
    content {
      registry_arn = service_registries.value.arn
    }
  }

  lifecycle {
    # Autoscaling owns the count once the service exists.
    ignore_changes = [desired_count]
  }
}
