# The egress tier (docs/decisions.md D21): the credential-proxy binary with
# no credentials, as a small ECS service behind an internal NLB. The
# workspace security group reaches the Bedrock endpoint and this NLB, nothing
# else; every workspace sidecar sends its upstream connections here
# (PROXY_EGRESS_PROXY) as CONNECT host:port, and the tier resolves, checks
# against the same allowlist (the one SSM parameter both task definitions
# read) and dials. RunTask tasks cannot use Service Connect (it serves
# service tasks only), hence the NLB; its DNS name is under amazonaws.com,
# which DNS Firewall already allows.

locals {
  # Ports CONNECT may reach: the sidecar and the tier state the same list
  # (the tier's security group opens 443 only).
  egress_allowed_ports = "443"

  egress_container_definitions = templatefile("${path.module}/templates/egress-containers.json.tftpl", {
    proxy_image                = var.credential_proxy_image
    aws_region                 = var.aws_region
    log_group                  = var.workspace_proxy_log_group
    egress_port                = var.egress_proxy_port
    allowed_ports              = local.egress_allowed_ports
    egress_max_tunnels         = var.egress_max_tunnels
    egress_cpu                 = var.egress_cpu
    egress_memory              = var.egress_memory
    proxy_domain_whitelist_arn = var.proxy_domain_whitelist_parameter_arn
  })

  # host:port the workspace sidecars chain to.
  egress_proxy_address = "${aws_lb.egress.dns_name}:${var.egress_proxy_port}"
}

resource "aws_ecs_task_definition" "egress" {
  family                   = "${var.name_prefix}-egress"
  network_mode             = "awsvpc"
  requires_compatibilities = ["EC2"]
  execution_role_arn       = var.execution_role_arn
  # No task role: the tier holds no AWS credentials either.
  container_definitions = local.egress_container_definitions

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  tags = var.tags
}

resource "aws_lb" "egress" {
  name                             = substr("${var.name_prefix}-egress", 0, 32)
  load_balancer_type               = "network"
  internal                         = true
  subnets                          = var.private_subnet_ids
  security_groups                  = [var.egress_nlb_security_group_id]
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = false
  tags                             = var.tags
}

resource "aws_lb_target_group" "egress" {
  name                 = substr("${var.name_prefix}-egress", 0, 32)
  port                 = var.egress_proxy_port
  protocol             = "TCP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 60
  # Tunnels already open when a task deregisters are closed at the end of
  # the delay instead of hanging on a gone target.
  connection_termination = true

  health_check {
    protocol            = "TCP"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  tags = var.tags
}

resource "aws_lb_listener" "egress" {
  load_balancer_arn = aws_lb.egress.arn
  port              = var.egress_proxy_port
  protocol          = "TCP"
  # As long as the proxy's own PROXY_TUNNEL_IDLE_TIMEOUT (10 min): the
  # NLB's default (350 s) would cut an idle tunnel first.
  tcp_idle_timeout_seconds = 600

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.egress.arn
  }

  tags = var.tags
}

resource "aws_ecs_service" "egress" {
  name            = "${var.name_prefix}-egress"
  cluster         = var.cluster_arn
  task_definition = aws_ecs_task_definition.egress.arn
  desired_count   = var.egress_count

  capacity_provider_strategy {
    capacity_provider = var.capacity_provider_name
    weight            = 1
    base              = 0
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [var.egress_security_group_id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.egress.arn
    container_name   = "egress-proxy"
    container_port   = var.egress_proxy_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 15
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"

  ordered_placement_strategy {
    type  = "spread"
    field = "attribute:ecs.availability-zone"
  }

  tags = var.tags

  depends_on = [aws_lb_listener.egress]
}
