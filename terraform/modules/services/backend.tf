# The backend (docs/design-basis.md §4.1): one ECS service, awsvpc, behind the ALB, scaled on
# CPU. It runs every role (`workspaced serve`); SQS makes replicas safe.

locals {
  backend_port = 8000

  backend_environment = {
    HTTP_ADDR                    = ":${local.backend_port}"
    CONTAINER_MANAGER_TYPE       = "ecs"
    BUS                          = "sqs"
    SQS_QUEUE_PREFIX             = var.sqs_queue_prefix
    SQS_VISIBILITY_TIMEOUT       = "${var.command_visibility_timeout_seconds}s"
    AWS_REGION                   = var.aws_region
    ECS_CLUSTER_NAME             = var.cluster_name
    WORKSPACE_TASK_DEFINITION    = aws_ecs_task_definition.workspace.family
    ECS_WORKSPACE_SUBNETS        = join(",", var.private_subnet_ids)
    ECS_WORKSPACE_SECURITY_GROUP = var.workspace_security_group_id
    ECS_CAPACITY_PROVIDER        = var.capacity_provider_name
    ECS_STARTED_BY               = local.names.started_by
    WARM_POOL_MIN_SIZE           = tostring(var.warm_pool_min_size)
    WARM_POOL_MAX_SIZE           = tostring(var.warm_pool_max_size)
    WORKSPACE_FILES_BUCKET       = var.workspace_files_bucket
    REDIS_URL                    = var.redis_url
    SSE_HEARTBEAT_INTERVAL       = "${var.sse_heartbeat_interval_seconds}s"
    LOG_FORMAT                   = "json"
    LOG_LEVEL                    = var.log_level
  }

  backend_secrets = {
    API_KEYS        = var.api_keys_secret_arn
    REDIS_PASSWORD  = var.redis_password_parameter_arn
    PROXY_ADMIN_KEY = var.proxy_admin_key_secret_arn
  }

  backend_container = {
    name                   = "backend"
    image                  = var.backend_image
    essential              = true
    cpu                    = var.backend_cpu - var.cloudwatch_agent_cpu # CPU shares within the task; unset would be 2 against the sidecar's 64
    command                = ["serve"]
    user                   = "65532:65532"
    readonlyRootFilesystem = true
    privileged             = false
    portMappings           = [{ containerPort = local.backend_port, protocol = "tcp", name = "http" }]
    linuxParameters = {
      capabilities       = { drop = ["ALL"] }
      initProcessEnabled = false
      # Scratch space for workspace archives in transit to and from S3.
      tmpfs = [{ containerPath = "/tmp", size = 1024, mountOptions = ["rw", "noexec", "nosuid", "nodev"] }]
    }
    dockerSecurityOptions = ["no-new-privileges:true"]
    environment           = [for k in sort(keys(local.backend_environment)) : { name = k, value = local.backend_environment[k] }]
    secrets               = [for k in sort(keys(local.backend_secrets)) : { name = k, valueFrom = local.backend_secrets[k] }]
    stopTimeout           = 45
    healthCheck = {
      # The image has no shell or curl: the binary probes its own /health/live.
      command     = ["CMD", "/usr/local/bin/workspaced", "healthcheck"]
      interval    = 30
      timeout     = 10
      retries     = 3
      startPeriod = 15
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.backend_log_group
        awslogs-region        = var.aws_region
        awslogs-stream-prefix = "backend"
      }
    }
  }
}

resource "aws_ecs_task_definition" "backend" {
  family                   = "${var.name_prefix}-backend"
  network_mode             = "awsvpc"
  requires_compatibilities = ["EC2"]
  cpu                      = tostring(var.backend_cpu)
  memory                   = tostring(var.backend_memory)
  task_role_arn            = var.backend_task_role_arn
  execution_role_arn       = var.execution_role_arn
  container_definitions    = jsonencode([local.backend_container, local.cloudwatch_agent_container])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  tags = var.tags
}

resource "aws_ecs_service" "backend" {
  name            = "${var.name_prefix}-backend"
  cluster         = var.cluster_arn
  task_definition = aws_ecs_task_definition.backend.arn
  desired_count   = var.backend_min_count

  capacity_provider_strategy {
    capacity_provider = var.capacity_provider_name
    weight            = 1
    base              = 0
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.backend_security_group_id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.backend.arn
    container_name   = local.backend_container.name
    container_port   = local.backend_port
  }

  # A deployment whose tasks do not become healthy rolls back by itself
  # (docs/deploy.md, "Rollback").
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 30
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"

  ordered_placement_strategy {
    type  = "spread"
    field = "attribute:ecs.availability-zone"
  }

  tags = var.tags

  # Autoscaling owns desired_count after creation.
  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.https]
}

resource "aws_appautoscaling_target" "backend" {
  service_namespace  = "ecs"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.backend.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.backend_min_count
  max_capacity       = var.backend_max_count
}

resource "aws_appautoscaling_policy" "backend_cpu" {
  name               = "${var.name_prefix}-backend-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.backend.service_namespace
  resource_id        = aws_appautoscaling_target.backend.resource_id
  scalable_dimension = aws_appautoscaling_target.backend.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.backend_cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
