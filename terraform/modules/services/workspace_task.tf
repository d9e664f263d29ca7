# The workspace task (docs/design-basis.md §4.2): workspace-agent + credential-proxy sidecar,
# started by the backend with RunTask. It has no task role: nothing inside can
# obtain AWS credentials from the ECS credential endpoint; the proxy gets the
# Bedrock keys as secrets, injected by the agent through the execution role.

locals {
  names = jsondecode(file("${path.module}/../../../deploy/names.json"))

  workspace_container_definitions = templatefile("${path.module}/templates/workspace-containers.json.tftpl", {
    agent_image                   = var.workspace_agent_image
    proxy_image                   = var.credential_proxy_image
    aws_region                    = var.aws_region
    bedrock_region                = var.bedrock_region
    agent_log_group               = var.workspace_agent_log_group
    proxy_log_group               = var.workspace_proxy_log_group
    agent_cpu                     = var.workspace_agent_cpu
    agent_memory                  = var.workspace_agent_memory
    agent_memory_reservation      = var.workspace_agent_memory_reservation
    agent_nproc_limit             = var.workspace_agent_nproc_limit
    proxy_cpu                     = var.credential_proxy_cpu
    proxy_memory                  = var.credential_proxy_memory
    proxy_memory_reservation      = var.credential_proxy_memory_reservation
    bedrock_access_key_id_arn     = var.bedrock_access_key_id_parameter_arn
    bedrock_secret_access_key_arn = var.bedrock_secret_access_key_parameter_arn
    proxy_domain_whitelist_arn    = var.proxy_domain_whitelist_parameter_arn
    egress_proxy                  = local.egress_proxy_address
    allowed_ports                 = local.egress_allowed_ports
    # The bedrock-runtime VPC endpoint (a private address) is dialed
    # directly; everything else goes through the egress tier. Bedrock in
    # another region has no endpoint here: it goes through the tier (the
    # stack adds its host to the allowlist).
    private_hosts = var.bedrock_region == var.aws_region ? "bedrock-runtime.${var.bedrock_region}.amazonaws.com" : ""
  })
}

resource "aws_ecs_task_definition" "workspace" {
  family                   = "${var.name_prefix}-${local.names.workspace_task.family}"
  network_mode             = "awsvpc"
  requires_compatibilities = ["EC2"]
  execution_role_arn       = var.execution_role_arn
  # No task_role_arn, on purpose (docs/design-basis.md §9.2 risk 1).
  container_definitions = local.workspace_container_definitions

  # Task-level CPU on EC2 is both a reservation and a hard cgroup limit. Null
  # (the default) keeps the seed's density (0.328 vCPU reserved per task) and
  # lets a workspace burst; set 2048 to cap each workspace at 2 vCPUs (DESIGN
  # §6) at the cost of reserving them.
  cpu = var.workspace_task_cpu

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  tags = var.tags
}
