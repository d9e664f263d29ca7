# The security module under the mocked AWS provider (offline): the backend's
# IAM policy, the workspace security group, DNS Firewall. Policy documents
# are asserted on their statements (inputs of aws_iam_policy_document); the
# rendered JSON is a mock. Run: terraform test (docs/deploy.md, "Checks").

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
      arn        = "arn:aws:iam::123456789012:user/test"
    }
  }
  mock_data "aws_partition" {
    defaults = {
      partition  = "aws"
      dns_suffix = "amazonaws.com"
    }
  }
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }
  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:ap-northeast-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    }
  }
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/test"
    }
  }
  mock_resource "aws_ssm_parameter" {
    defaults = {
      arn = "arn:aws:ssm:ap-northeast-1:123456789012:parameter/workspaced/test/x"
    }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = {
      arn = "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:test-AbCdEf"
    }
  }
}

# Distinct role ARNs, so a policy naming the wrong role shows.
override_resource {
  target = aws_iam_role.execution
  values = { arn = "arn:aws:iam::123456789012:role/workspaced-test-ecs-execution" }
}

override_resource {
  target = aws_iam_role.backend
  values = { arn = "arn:aws:iam::123456789012:role/workspaced-test-backend-task" }
}

override_resource {
  target = aws_iam_role.instance
  values = { arn = "arn:aws:iam::123456789012:role/workspaced-test-ecs-instance" }
}

# Distinct security group IDs, so a rule on the wrong group shows.
override_resource {
  target = aws_security_group.alb
  values = { id = "sg-0a1b0000000000001" }
}

override_resource {
  target = aws_security_group.backend
  values = { id = "sg-0a1b0000000000002" }
}

override_resource {
  target = aws_security_group.workspace
  values = { id = "sg-0a1b0000000000003" }
}

override_resource {
  target = aws_security_group.instances
  values = { id = "sg-0a1b0000000000004" }
}

override_resource {
  target = aws_security_group.endpoints
  values = { id = "sg-0a1b0000000000005" }
}

override_resource {
  target = aws_security_group.bedrock_endpoint
  values = { id = "sg-0a1b0000000000006" }
}

override_resource {
  target = aws_security_group.redis
  values = { id = "sg-0a1b0000000000007" }
}

override_resource {
  target = aws_security_group.egress_nlb
  values = { id = "sg-0a1b0000000000008" }
}

override_resource {
  target = aws_security_group.egress
  values = { id = "sg-0a1b0000000000009" }
}

variables {
  name_prefix                 = "workspaced-test"
  aws_region                  = "ap-northeast-1"
  vpc_id                      = "vpc-0a1b2c3d4e5f60000"
  s3_prefix_list_id           = "pl-61a54008"
  cluster_arn                 = "arn:aws:ecs:ap-northeast-1:123456789012:cluster/workspaced-test"
  workspace_task_family       = "workspaced-test-workspace-agent"
  ssm_parameter_prefix        = "/workspaced/test"
  command_queue_arns          = ["arn:aws:sqs:ap-northeast-1:123456789012:test-workspace-requested", "arn:aws:sqs:ap-northeast-1:123456789012:test-workspace-released"]
  dead_letter_queue_arns      = ["arn:aws:sqs:ap-northeast-1:123456789012:test-workspace-requested-dlq"]
  task_events_queue_arn       = "arn:aws:sqs:ap-northeast-1:123456789012:test-workspace-task-events"
  workspace_files_bucket_arn  = "arn:aws:s3:::workspaced-test-123456789012-workspace-files"
  workspace_files_kms_key_arn = "arn:aws:kms:ap-northeast-1:123456789012:key/11111111-1111-1111-1111-111111111111"
  log_group_arns              = ["arn:aws:logs:ap-northeast-1:123456789012:log-group:/ecs/workspaced-test/backend"]
  ecr_repository_arns         = ["arn:aws:ecr:ap-northeast-1:123456789012:repository/workspaced/backend"]
  metrics_log_group_arn       = "arn:aws:logs:ap-northeast-1:123456789012:log-group:/ecs/workspaced-test/metrics"
  # workspace_egress_cidr_blocks left at its default: no direct egress.
  mcp_domains = ["mcp.example.com."]
}

run "backend_may_tag_claimed_tasks" {
  # runtime/ecs RecordClaim tags a running task with TagResource, outside
  # RunTask: the policy must allow that on this cluster's tasks, for the
  # claim tag keys only (deploy/names.json claim_tag_keys).
  assert {
    condition = length([for s in data.aws_iam_policy_document.backend.statement : s
      if contains(s.actions, "ecs:TagResource")
      && s.resources == toset(["arn:aws:ecs:ap-northeast-1:123456789012:task/workspaced-test/*"])
      && length([for c in s.condition : c if c.variable == "ecs:CreateAction"]) == 0
      && length([for c in s.condition : c if c.test == "ForAllValues:StringEquals" && c.variable == "aws:TagKeys"
    && toset(c.values) == toset(["workspaced:conversation", "workspaced:owner", "workspaced:tenant", "workspaced:generation"])]) == 1]) == 1
    error_message = "The backend needs ecs:TagResource on this cluster's tasks outside RunTask (RecordClaim), limited to the claim tag keys."
  }

  assert {
    condition = alltrue([for s in data.aws_iam_policy_document.backend.statement :
      alltrue([for r in s.resources : r != "*"]) if contains(s.actions, "ecs:TagResource")
    ])
    error_message = "ecs:TagResource must never be granted on *."
  }

  assert {
    condition = length([for s in data.aws_iam_policy_document.backend.statement : s
      if contains(s.actions, "ecs:RunTask")
      && length([for c in s.condition : c if c.variable == "ecs:cluster" && c.values == tolist([var.cluster_arn])]) == 1
    ]) == 1
    error_message = "RunTask must be conditioned on this cluster."
  }

  assert {
    condition = alltrue([for s in data.aws_iam_policy_document.backend.statement :
      s.resources == toset([aws_iam_role.execution.arn]) if contains(s.actions, "iam:PassRole")
    ])
    error_message = "The backend may pass the execution role only."
  }
}

run "workspace_security_group" {
  # Every ingress rule on the workspace group comes from the backend group.
  # The lists below name every rule resource of the module
  # (TestSecurityGroupRulesAllAsserted keeps them complete).
  assert {
    condition = alltrue([for r in concat(
      values(aws_vpc_security_group_ingress_rule.alb_https),
      [aws_vpc_security_group_ingress_rule.backend_from_alb],
      values(aws_vpc_security_group_ingress_rule.workspace_from_backend),
      values(aws_vpc_security_group_ingress_rule.endpoints_from),
      [aws_vpc_security_group_ingress_rule.bedrock_endpoint_from_workspace],
      [aws_vpc_security_group_ingress_rule.redis_from_backend],
      aws_vpc_security_group_ingress_rule.rds_from_backend,
      [aws_vpc_security_group_ingress_rule.egress_nlb_from_workspace],
      [aws_vpc_security_group_ingress_rule.egress_from_nlb],
      ) : r.referenced_security_group_id == aws_security_group.backend.id && r.cidr_ipv4 == null && r.cidr_ipv6 == null
    if r.security_group_id == aws_security_group.workspace.id])
    error_message = "Every ingress rule of the workspace group must come from the backend group."
  }

  assert {
    condition     = toset([for r in aws_vpc_security_group_ingress_rule.workspace_from_backend : "${r.ip_protocol}/${r.from_port}-${r.to_port}"]) == toset(["tcp/9000-9000", "tcp/9001-9001"])
    error_message = "The workspace group admits the agent (9000) and the proxy admin listener (9001), nothing else (docs/security.md)."
  }

  # Egress exactly as docs/security.md, "Workspace network (ECS)": 443 to
  # the bedrock-runtime endpoint's group and the egress tier's NLB; no CIDR
  # at all by default (docs/decisions.md D21).
  assert {
    condition = toset([for r in concat(
      [aws_vpc_security_group_egress_rule.alb_to_backend],
      values(aws_vpc_security_group_egress_rule.backend_to_workspace),
      [aws_vpc_security_group_egress_rule.backend_to_redis],
      aws_vpc_security_group_egress_rule.backend_to_rds,
      [aws_vpc_security_group_egress_rule.backend_to_endpoints],
      [aws_vpc_security_group_egress_rule.backend_to_s3],
      [aws_vpc_security_group_egress_rule.workspace_to_bedrock],
      [aws_vpc_security_group_egress_rule.workspace_to_egress_tier],
      values(aws_vpc_security_group_egress_rule.workspace_egress),
      [aws_vpc_security_group_egress_rule.egress_nlb_to_egress],
      values(aws_vpc_security_group_egress_rule.egress_https),
      [aws_vpc_security_group_egress_rule.instances_to_endpoints],
      [aws_vpc_security_group_egress_rule.instances_to_s3],
      ) :
      "${r.ip_protocol}/${r.from_port}-${r.to_port}->${coalesce(r.referenced_security_group_id, r.cidr_ipv4, r.prefix_list_id, "?")}"
      if r.security_group_id == aws_security_group.workspace.id]) == toset([
      "tcp/443-443->${aws_security_group.bedrock_endpoint.id}",
      "tcp/3128-3128->${aws_security_group.egress_nlb.id}",
    ])
    error_message = "The workspace group's egress must be exactly 443 to the Bedrock endpoint and 3128 to the egress tier's NLB."
  }

  assert {
    condition = length([for r in concat(
      [aws_vpc_security_group_egress_rule.alb_to_backend],
      values(aws_vpc_security_group_egress_rule.backend_to_workspace),
      [aws_vpc_security_group_egress_rule.backend_to_redis],
      aws_vpc_security_group_egress_rule.backend_to_rds,
      [aws_vpc_security_group_egress_rule.backend_to_endpoints],
      [aws_vpc_security_group_egress_rule.backend_to_s3],
      [aws_vpc_security_group_egress_rule.workspace_to_bedrock],
      [aws_vpc_security_group_egress_rule.workspace_to_egress_tier],
      values(aws_vpc_security_group_egress_rule.workspace_egress),
      [aws_vpc_security_group_egress_rule.egress_nlb_to_egress],
      values(aws_vpc_security_group_egress_rule.egress_https),
      [aws_vpc_security_group_egress_rule.instances_to_endpoints],
      [aws_vpc_security_group_egress_rule.instances_to_s3],
      ) : r
    if r.security_group_id == aws_security_group.workspace.id && (r.cidr_ipv4 != null || r.cidr_ipv6 != null || r.prefix_list_id != null)]) == 0
    error_message = "By default the workspace group has no CIDR egress at all (no 0.0.0.0/0): the agent shares the ENI and would bypass the proxy."
  }

  # The tier: reached only from workspaces through its NLB; the only group
  # with 0.0.0.0/0 egress on the workspace path.
  assert {
    condition = (aws_vpc_security_group_ingress_rule.egress_nlb_from_workspace.referenced_security_group_id == aws_security_group.workspace.id
      && aws_vpc_security_group_ingress_rule.egress_from_nlb.referenced_security_group_id == aws_security_group.egress_nlb.id
      && aws_vpc_security_group_egress_rule.egress_nlb_to_egress.referenced_security_group_id == aws_security_group.egress.id
    && alltrue([for r in values(aws_vpc_security_group_egress_rule.egress_https) : r.security_group_id == aws_security_group.egress.id && r.from_port == 443 && r.to_port == 443]))
    error_message = "workspace -> egress NLB -> egress tasks -> 443 out, and nothing else on the tier."
  }

  assert {
    condition = toset([for r in concat(
      [aws_vpc_security_group_egress_rule.alb_to_backend],
      values(aws_vpc_security_group_egress_rule.backend_to_workspace),
      [aws_vpc_security_group_egress_rule.backend_to_redis],
      aws_vpc_security_group_egress_rule.backend_to_rds,
      [aws_vpc_security_group_egress_rule.backend_to_endpoints],
      [aws_vpc_security_group_egress_rule.backend_to_s3],
      [aws_vpc_security_group_egress_rule.workspace_to_bedrock],
      [aws_vpc_security_group_egress_rule.workspace_to_egress_tier],
      values(aws_vpc_security_group_egress_rule.workspace_egress),
      [aws_vpc_security_group_egress_rule.egress_nlb_to_egress],
      values(aws_vpc_security_group_egress_rule.egress_https),
      [aws_vpc_security_group_egress_rule.instances_to_endpoints],
      [aws_vpc_security_group_egress_rule.instances_to_s3],
    ) : r.security_group_id if r.cidr_ipv4 == "0.0.0.0/0"]) == toset([aws_security_group.egress.id])
    error_message = "Only the egress tier may have 0.0.0.0/0 egress."
  }
}

run "one_allowlist" {
  # The sidecar and the egress tier read the same SSM parameter; it holds
  # the proxy allowlist and the MCP domains, and DNS Firewall allows the
  # same names.
  assert {
    condition     = aws_ssm_parameter.proxy_domain_whitelist.value == "pypi.org,files.pythonhosted.org,registry.npmjs.org,mcp.example.com"
    error_message = "The allowlist parameter is proxy_domain_whitelist plus mcp_domains (without the trailing dot)."
  }

  assert {
    condition     = alltrue([for d in split(",", aws_ssm_parameter.proxy_domain_whitelist.value) : contains(aws_route53_resolver_firewall_domain_list.allowed.domains, "${d}.")])
    error_message = "DNS Firewall must allow every name on the egress allowlist."
  }
}

run "direct_egress_is_opt_in" {
  variables {
    workspace_egress_cidr_blocks = ["203.0.113.0/24"]
  }

  assert {
    condition     = [for r in values(aws_vpc_security_group_egress_rule.workspace_egress) : r.cidr_ipv4] == ["203.0.113.0/24"]
    error_message = "workspace_egress_cidr_blocks adds direct egress rules, only when set."
  }
}

run "dns_firewall_fails_closed" {
  assert {
    condition     = aws_route53_resolver_firewall_config.vpc.firewall_fail_open == "DISABLED" && aws_route53_resolver_firewall_config.vpc.resource_id == var.vpc_id
    error_message = "DNS Firewall must fail closed on this VPC."
  }

  assert {
    condition = (aws_route53_resolver_firewall_rule.block_rest.action == "BLOCK"
      && aws_route53_resolver_firewall_rule.block_rest.block_response == "NXDOMAIN"
      && aws_route53_resolver_firewall_domain_list.everything.domains == toset(["*"])
      && aws_route53_resolver_firewall_rule.block_rest.firewall_domain_list_id == aws_route53_resolver_firewall_domain_list.everything.id
    && aws_route53_resolver_firewall_rule.allow.priority < aws_route53_resolver_firewall_rule.block_rest.priority)
    error_message = "After the allow-list, every other name must get NXDOMAIN."
  }

  assert {
    condition     = aws_route53_resolver_firewall_rule_group_association.vpc.vpc_id == var.vpc_id && aws_route53_resolver_firewall_rule_group_association.vpc.firewall_rule_group_id == aws_route53_resolver_firewall_rule_group.workspace.id
    error_message = "The rule group must be associated with this VPC."
  }

  assert {
    condition     = aws_route53_resolver_firewall_rule_group_association.vpc.mutation_protection == "ENABLED"
    error_message = "Mutation protection is on by default (production)."
  }
}

run "dns_firewall_mutation_protection_is_a_setting" {
  # Staging is destroyed and rebuilt: with mutation protection on, terraform
  # destroy fails on the association.
  variables {
    dns_firewall_mutation_protection = false
  }

  assert {
    condition     = aws_route53_resolver_firewall_rule_group_association.vpc.mutation_protection == "DISABLED"
    error_message = "dns_firewall_mutation_protection = false must disable mutation protection."
  }
}
