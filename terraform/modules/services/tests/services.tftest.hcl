# The services module under the mocked AWS provider (offline): the workspace
# task definition (hardening, credentials), the backend service, the ALB.
# Run: terraform test (docs/deploy.md, "Checks").

mock_provider "aws" {
  mock_resource "aws_lb" {
    defaults = {
      arn        = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:loadbalancer/app/workspaced-test-api/0123456789abcdef"
      arn_suffix = "app/workspaced-test-api/0123456789abcdef"
    }
  }
  mock_resource "aws_lb_target_group" {
    defaults = {
      arn        = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/workspaced-test-backend/0123456789abcdef"
      arn_suffix = "targetgroup/workspaced-test-backend/0123456789abcdef"
    }
  }
  mock_resource "aws_lb_listener" {
    defaults = {
      arn = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:listener/app/workspaced-test-api/0123456789abcdef/0123456789abcdef"
    }
  }
  mock_resource "aws_ecs_task_definition" {
    defaults = {
      arn = "arn:aws:ecs:ap-northeast-1:123456789012:task-definition/workspaced-test-backend:1"
    }
  }
}

variables {
  name_prefix                             = "workspaced-test"
  aws_region                              = "ap-northeast-1"
  environment                             = "test"
  execution_role_arn                      = "arn:aws:iam::123456789012:role/workspaced-test-ecs-execution"
  workspace_agent_image                   = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/workspaced/workspace-base:abc"
  credential_proxy_image                  = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/workspaced/credential-proxy:abc"
  bedrock_region                          = "ap-northeast-1"
  workspace_agent_log_group               = "/ecs/workspaced-test/workspace-agent"
  workspace_proxy_log_group               = "/ecs/workspaced-test/workspace-proxy"
  bedrock_access_key_id_parameter_arn     = "arn:aws:ssm:ap-northeast-1:123456789012:parameter/workspaced/test/bedrock-access-key-id"
  bedrock_secret_access_key_parameter_arn = "arn:aws:ssm:ap-northeast-1:123456789012:parameter/workspaced/test/bedrock-secret-access-key"
  proxy_domain_whitelist_parameter_arn    = "arn:aws:ssm:ap-northeast-1:123456789012:parameter/workspaced/test/proxy-domain-whitelist"
  cluster_name                            = "workspaced-test"
  cluster_arn                             = "arn:aws:ecs:ap-northeast-1:123456789012:cluster/workspaced-test"
  capacity_provider_name                  = "workspaced-test-ec2"
  vpc_id                                  = "vpc-0a1b2c3d4e5f60000"
  public_subnet_ids                       = ["subnet-0a1b2c3d4e5f60011", "subnet-0a1b2c3d4e5f60012"]
  private_subnet_ids                      = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
  alb_security_group_id                   = "sg-0a1b0000000000001"
  backend_security_group_id               = "sg-0a1b0000000000002"
  workspace_security_group_id             = "sg-0a1b0000000000003"
  egress_security_group_id                = "sg-0a1b0000000000009"
  egress_nlb_security_group_id            = "sg-0a1b0000000000008"
  backend_task_role_arn                   = "arn:aws:iam::123456789012:role/workspaced-test-backend-task"
  backend_image                           = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/workspaced/backend:abc"
  backend_log_group                       = "/ecs/workspaced-test/backend"
  certificate_arn                         = "arn:aws:acm:ap-northeast-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  sqs_queue_prefix                        = "test-"
  command_visibility_timeout_seconds      = 120
  workspace_files_bucket                  = "workspaced-test-123456789012-workspace-files"
  redis_url                               = "rediss://master.workspaced-test-redis.abc123.apne1.cache.amazonaws.com:6379"
  redis_password_parameter_arn            = "arn:aws:ssm:ap-northeast-1:123456789012:parameter/workspaced/test/redis-password"
  api_keys_secret_arn                     = "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:workspaced-test/api-keys-AbCdEf"
  proxy_admin_key_secret_arn              = "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:workspaced-test/proxy-admin-key-AbCdEf"
  metrics_namespace                       = "Workspaced"
  metrics_log_group                       = "/ecs/workspaced-test/metrics"
  cloudwatch_agent_image                  = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/ecr-public/cloudwatch-agent/cloudwatch-agent:1.300051.0b992"
}

run "workspace_task" {
  assert {
    condition = (aws_ecs_task_definition.workspace.network_mode == "awsvpc"
      && aws_ecs_task_definition.workspace.requires_compatibilities == toset(["EC2"])
    && aws_ecs_task_definition.workspace.task_role_arn == null)
    error_message = "The workspace task is awsvpc on EC2 with no task role (nothing inside can get AWS credentials)."
  }

  assert {
    condition = alltrue([for c in jsondecode(aws_ecs_task_definition.workspace.container_definitions) :
      (c.user == "1000:1000" && c.readonlyRootFilesystem && !c.privileged
        && c.linuxParameters.capabilities.drop == ["ALL"]
        && contains(c.dockerSecurityOptions, "no-new-privileges:true")
    ) if c.name == "workspace-agent"])
    error_message = "The agent container runs as 1000:1000, read-only, unprivileged, all capabilities dropped, no-new-privileges."
  }

  assert {
    condition = alltrue([for c in jsondecode(aws_ecs_task_definition.workspace.container_definitions) :
      length(try(c.secrets, [])) == 0 && length(try(c.environmentFiles, [])) == 0
    if c.name == "workspace-agent"])
    error_message = "The agent container has no secrets."
  }

  assert {
    condition = alltrue([for c in jsondecode(aws_ecs_task_definition.workspace.container_definitions) :
      alltrue([for e in try(c.environment, []) :
        length(regexall("(?i)(secret|password|passwd|token|credential|private|api_?key|access_?key|session)", e.name)) == 0
        && length(regexall("^(arn:|AKIA|ASIA)", e.value)) == 0
      ])
    if c.name == "workspace-agent"])
    error_message = "No secret-looking variable in the agent container's environment (names or values)."
  }

  # Only the proxy holds the Bedrock credentials, and only as secrets.
  assert {
    condition = [for c in jsondecode(aws_ecs_task_definition.workspace.container_definitions) : c.name
      if length([for s in try(c.secrets, []) : s if startswith(s.name, "AWS_")]) > 0
    ] == ["credential-proxy"]
    error_message = "Only the credential-proxy container may hold AWS (Bedrock) credentials."
  }

  assert {
    condition = alltrue([for c in jsondecode(aws_ecs_task_definition.workspace.container_definitions) :
      toset([for s in c.secrets : s.valueFrom]) == toset([var.bedrock_access_key_id_parameter_arn, var.bedrock_secret_access_key_parameter_arn, var.proxy_domain_whitelist_parameter_arn])
    if c.name == "credential-proxy"])
    error_message = "The proxy's secrets are the Bedrock key pair and its allow-list, from SSM."
  }

  assert {
    condition = alltrue([for c in jsondecode(aws_ecs_task_definition.workspace.container_definitions) :
      alltrue([for e in try(c.environment, []) : !startswith(e.name, "AWS_ACCESS") && !startswith(e.name, "AWS_SECRET") && e.name != "AWS_SESSION_TOKEN"])
    ])
    error_message = "No container carries AWS keys in plain environment variables."
  }
}

run "egress_tier" {
  # One allowlist (docs/decisions.md D21): the workspace sidecar and the
  # egress tier read PROXY_DOMAIN_WHITELIST from the same SSM parameter and
  # allow the same ports; the sidecar sends everything but the Bedrock
  # endpoint to the tier's NLB.
  assert {
    condition = length(distinct(flatten([for td in [aws_ecs_task_definition.workspace, aws_ecs_task_definition.egress] : [
      for c in jsondecode(td.container_definitions) : [for s in try(c.secrets, []) : s.valueFrom if s.name == "PROXY_DOMAIN_WHITELIST"]
    ]]))) == 1 && one(distinct(flatten([for c in jsondecode(aws_ecs_task_definition.egress.container_definitions) : [for s in c.secrets : s.valueFrom if s.name == "PROXY_DOMAIN_WHITELIST"]]))) == var.proxy_domain_whitelist_parameter_arn
    error_message = "The sidecar and the egress tier must read PROXY_DOMAIN_WHITELIST from the same SSM parameter."
  }

  assert {
    condition = length(distinct(flatten([for td in [aws_ecs_task_definition.workspace, aws_ecs_task_definition.egress] : [
      for c in jsondecode(td.container_definitions) : [for e in c.environment : e.value if e.name == "PROXY_ALLOWED_PORTS"]
    ]]))) == 1
    error_message = "The sidecar and the egress tier must allow the same ports."
  }

  assert {
    condition = [for c in jsondecode(aws_ecs_task_definition.workspace.container_definitions) :
      one([for e in c.environment : e.value if e.name == "PROXY_EGRESS_PROXY"]) if c.name == "credential-proxy"
    ] == ["${aws_lb.egress.dns_name}:3128"]
    error_message = "The sidecar chains to the egress tier's NLB."
  }

  assert {
    condition = [for c in jsondecode(aws_ecs_task_definition.workspace.container_definitions) :
      one([for e in c.environment : e.value if e.name == "PROXY_PRIVATE_HOSTS"]) if c.name == "credential-proxy"
    ] == ["bedrock-runtime.ap-northeast-1.amazonaws.com"]
    error_message = "Only the bedrock-runtime VPC endpoint is dialed directly by the sidecar."
  }

  assert {
    condition = (aws_lb.egress.internal && aws_lb.egress.load_balancer_type == "network"
      && aws_lb.egress.security_groups == toset([var.egress_nlb_security_group_id])
      && aws_lb_listener.egress.port == 3128 && aws_lb_target_group.egress.target_type == "ip"
    && aws_lb_listener.egress.tcp_idle_timeout_seconds >= 600)
    error_message = "The egress tier sits behind an internal NLB with its own group, and the NLB keeps idle tunnels as long as the proxy does (10 min)."
  }

  assert {
    condition = (aws_ecs_task_definition.egress.task_role_arn == null && aws_ecs_task_definition.egress.network_mode == "awsvpc"
      && one(aws_ecs_service.egress.network_configuration).security_groups == toset([var.egress_security_group_id])
    && !one(aws_ecs_service.egress.network_configuration).assign_public_ip)
    error_message = "The egress tier has no task role, runs awsvpc in its own group, without a public IP."
  }

  assert {
    condition = alltrue([for c in jsondecode(aws_ecs_task_definition.egress.container_definitions) :
      length([for s in c.secrets : s if startswith(s.name, "AWS_")]) == 0 && length([for e in c.environment : e if e.name == "AWS_REGION" || e.name == "PROXY_ADMIN_LISTEN"]) == 0
    ])
    error_message = "The egress tier holds no AWS credentials, has no Bedrock route and no admin API."
  }
}

run "alb_outlives_sse_heartbeats" {
  # An idle SSE stream is closed by the ALB after idle_timeout; heartbeats
  # (the backend's SSE_HEARTBEAT_INTERVAL) must come well before, two per
  # timeout at least, so one late heartbeat does not drop a stream.
  assert {
    condition = alltrue([for c in jsondecode(aws_ecs_task_definition.backend.container_definitions) :
      aws_lb.this.idle_timeout >= 2 * tonumber(trimsuffix(one([for e in c.environment : e.value if e.name == "SSE_HEARTBEAT_INTERVAL"]), "s"))
    if c.name == "backend"])
    error_message = "The ALB idle timeout must be at least twice the backend's SSE heartbeat interval."
  }
}

run "backend_service" {
  assert {
    condition     = [for s in aws_ecs_service.backend.capacity_provider_strategy : s.capacity_provider] == [var.capacity_provider_name]
    error_message = "The backend service runs on the cluster's capacity provider."
  }

  assert {
    condition = alltrue([for c in jsondecode(aws_ecs_task_definition.backend.container_definitions) :
      one([for e in c.environment : e.value if e.name == "ECS_CAPACITY_PROVIDER"]) == var.capacity_provider_name
    if c.name == "backend"])
    error_message = "The runtime starts workspaces through the same capacity provider."
  }

  assert {
    condition     = aws_ecs_service.backend.network_configuration[0].assign_public_ip == false && aws_ecs_service.backend.network_configuration[0].security_groups == toset([var.backend_security_group_id])
    error_message = "The backend runs in private subnets, in the backend group."
  }
}
