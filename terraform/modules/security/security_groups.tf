# Security groups of docs/design-basis.md §4.3. Every group starts with no rules (Terraform
# removes the default allow-all egress); each allowed flow is one rule below.
#
#   clients ─443─> alb ─8000─> backend ─9000/9001─> workspace ─443─> bedrock endpoint
#                               │  └─6379─> redis            └─3128─> egress_nlb ─3128─> egress ─443─> 0.0.0.0/0 (NAT)
#                               └─443─> interface endpoints, S3 prefix list
#   container instances ─443─> interface endpoints, S3 prefix list
#
# A workspace task (agent and credential-proxy share its ENI) reaches the
# Bedrock endpoint and the egress tier, nothing else: the tier (the proxy
# binary as a small service behind an internal NLB) holds the one open
# egress rule and checks every destination against the allowlist the
# sidecar uses (docs/decisions.md D21). workspace_egress_cidr_blocks is
# empty by default; any entry is a direct route around the proxy.

resource "aws_security_group" "alb" {
  name        = "${var.name_prefix}-alb"
  description = "ALB: HTTPS from clients, to the backend only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-alb" })
}

resource "aws_security_group" "backend" {
  name        = "${var.name_prefix}-backend"
  description = "Backend tasks: from the ALB; to Redis, workspaces, VPC endpoints"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-backend" })
}

resource "aws_security_group" "workspace" {
  name        = "${var.name_prefix}-workspace"
  description = "Workspace tasks: agent and proxy admin from the backend; out to Bedrock and allowed egress only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-workspace" })
}

resource "aws_security_group" "egress_nlb" {
  name        = "${var.name_prefix}-egress-nlb"
  description = "Internal NLB of the egress tier: from workspace tasks; to the egress tasks"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-egress-nlb" })
}

resource "aws_security_group" "egress" {
  name        = "${var.name_prefix}-egress"
  description = "Egress tier tasks: from their NLB; HTTPS out through NAT (the allowlist is the proxy's)"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-egress" })
}

resource "aws_security_group" "instances" {
  name        = "${var.name_prefix}-container-instances"
  description = "ECS container instances (primary ENI): no inbound; out to VPC endpoints"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-container-instances" })
}

resource "aws_security_group" "endpoints" {
  name        = "${var.name_prefix}-vpc-endpoints"
  description = "Interface VPC endpoints: HTTPS from the backend and the container instances"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-vpc-endpoints" })
}

resource "aws_security_group" "bedrock_endpoint" {
  name        = "${var.name_prefix}-bedrock-endpoint"
  description = "bedrock-runtime VPC endpoint: HTTPS from workspace tasks (their credential proxy)"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-bedrock-endpoint" })
}

resource "aws_security_group" "redis" {
  name        = "${var.name_prefix}-redis"
  description = "ElastiCache Redis: from the backend only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-redis" })
}

resource "aws_security_group" "rds" {
  count = var.enable_rds ? 1 : 0

  name        = "${var.name_prefix}-rds"
  description = "RDS PostgreSQL: from the backend only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name_prefix}-rds" })
}

# --- ALB -------------------------------------------------------------------

# The ALB is the public API endpoint; narrow alb_ingress_cidr_blocks per environment when clients have fixed ranges.
resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = toset(var.alb_ingress_cidr_blocks)

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from clients"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_backend" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To backend tasks"
  ip_protocol                  = "tcp"
  from_port                    = var.backend_port
  to_port                      = var.backend_port
  referenced_security_group_id = aws_security_group.backend.id
}

# --- backend ---------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "backend_from_alb" {
  security_group_id            = aws_security_group.backend.id
  description                  = "From the ALB"
  ip_protocol                  = "tcp"
  from_port                    = var.backend_port
  to_port                      = var.backend_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "backend_to_workspace" {
  for_each = {
    agent       = var.agent_port
    proxy_admin = var.proxy_admin_port
  }

  security_group_id            = aws_security_group.backend.id
  description                  = "To workspace tasks (${each.key})"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.workspace.id
}

resource "aws_vpc_security_group_egress_rule" "backend_to_redis" {
  security_group_id            = aws_security_group.backend.id
  description                  = "To Redis"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = aws_security_group.redis.id
}

resource "aws_vpc_security_group_egress_rule" "backend_to_rds" {
  count = var.enable_rds ? 1 : 0

  security_group_id            = aws_security_group.backend.id
  description                  = "To PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.rds[0].id
}

resource "aws_vpc_security_group_egress_rule" "backend_to_endpoints" {
  security_group_id            = aws_security_group.backend.id
  description                  = "To interface VPC endpoints (ECS, SQS, SSM, logs...)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "backend_to_s3" {
  security_group_id = aws_security_group.backend.id
  description       = "To S3 (gateway endpoint): workspace files"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = var.s3_prefix_list_id
}

# --- workspace tasks -------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "workspace_from_backend" {
  for_each = {
    agent       = var.agent_port
    proxy_admin = var.proxy_admin_port
  }

  security_group_id            = aws_security_group.workspace.id
  description                  = "From the backend (${each.key})"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.backend.id
}

resource "aws_vpc_security_group_egress_rule" "workspace_to_bedrock" {
  security_group_id            = aws_security_group.workspace.id
  description                  = "To the bedrock-runtime VPC endpoint"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.bedrock_endpoint.id
}

resource "aws_vpc_security_group_egress_rule" "workspace_to_egress_tier" {
  security_group_id            = aws_security_group.workspace.id
  description                  = "To the egress tier's NLB (the sidecar's only way out)"
  ip_protocol                  = "tcp"
  from_port                    = var.egress_proxy_port
  to_port                      = var.egress_proxy_port
  referenced_security_group_id = aws_security_group.egress_nlb.id
}

# Off by default: any entry lets the agent reach those addresses directly,
# around the proxy (the agent and the sidecar share the task ENI).
resource "aws_vpc_security_group_egress_rule" "workspace_egress" {
  for_each = toset(var.workspace_egress_cidr_blocks)

  security_group_id = aws_security_group.workspace.id
  description       = "HTTPS direct to extra destinations (bypasses the proxy)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

# --- egress tier -----------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "egress_nlb_from_workspace" {
  security_group_id            = aws_security_group.egress_nlb.id
  description                  = "CONNECT from workspace tasks (their credential proxy)"
  ip_protocol                  = "tcp"
  from_port                    = var.egress_proxy_port
  to_port                      = var.egress_proxy_port
  referenced_security_group_id = aws_security_group.workspace.id
}

resource "aws_vpc_security_group_egress_rule" "egress_nlb_to_egress" {
  security_group_id            = aws_security_group.egress_nlb.id
  description                  = "To the egress tasks (traffic and health checks)"
  ip_protocol                  = "tcp"
  from_port                    = var.egress_proxy_port
  to_port                      = var.egress_proxy_port
  referenced_security_group_id = aws_security_group.egress.id
}

resource "aws_vpc_security_group_ingress_rule" "egress_from_nlb" {
  security_group_id            = aws_security_group.egress.id
  description                  = "From the egress tier's NLB"
  ip_protocol                  = "tcp"
  from_port                    = var.egress_proxy_port
  to_port                      = var.egress_proxy_port
  referenced_security_group_id = aws_security_group.egress_nlb.id
}

# The one open egress of the workspace path: registries and MCP servers
# have no fixed ranges (default 0.0.0.0/0). The egress tier lets a
# connection through only to a name on the shared allowlist whose every
# address is public (proxy/egress), so this rule serves that check, not a
# bypass of it.
#trivy:ignore:AVD-AWS-0104 the egress tier is the allowlisting proxy itself: it connects only to allowlisted names whose addresses are all public (proxy/egress, docs/decisions.md D21); registries and MCP servers have no fixed ranges.
resource "aws_vpc_security_group_egress_rule" "egress_https" {
  for_each = toset(var.egress_tier_cidr_blocks)

  security_group_id = aws_security_group.egress.id
  description       = "HTTPS to allowlisted destinations (checked by the proxy), via NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

# --- container instances ---------------------------------------------------

resource "aws_vpc_security_group_egress_rule" "instances_to_endpoints" {
  security_group_id            = aws_security_group.instances.id
  description                  = "To interface VPC endpoints (ECS agent, ECR, logs, SSM)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "instances_to_s3" {
  security_group_id = aws_security_group.instances.id
  description       = "To S3 (gateway endpoint): ECR image layers, dnf repositories"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = var.s3_prefix_list_id
}

# --- endpoints, data stores ------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "endpoints_from" {
  for_each = {
    backend   = aws_security_group.backend.id
    instances = aws_security_group.instances.id
  }

  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_ingress_rule" "bedrock_endpoint_from_workspace" {
  security_group_id            = aws_security_group.bedrock_endpoint.id
  description                  = "HTTPS from workspace tasks"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.workspace.id
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_backend" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis (TLS) from the backend"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = aws_security_group.backend.id
}

resource "aws_vpc_security_group_ingress_rule" "rds_from_backend" {
  count = var.enable_rds ? 1 : 0

  security_group_id            = aws_security_group.rds[0].id
  description                  = "PostgreSQL from the backend"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.backend.id
}
