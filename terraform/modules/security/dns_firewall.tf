# Route 53 Resolver DNS Firewall (docs/design-basis.md §4.4). Security groups cannot stop DNS
# to the VPC resolver, so names are filtered here: the allow-list, then
# NXDOMAIN for everything else. The firewall is per VPC, so the list includes
# what the backend and the container instances resolve (AWS APIs, internal
# names). It fails closed.

resource "aws_route53_resolver_firewall_domain_list" "allowed" {
  name    = "${var.name_prefix}-allowed"
  domains = distinct(concat(var.dns_allowed_domains, [for d in local.egress_allowlist : "${d}."]))
  tags    = var.tags
}

resource "aws_route53_resolver_firewall_domain_list" "everything" {
  name    = "${var.name_prefix}-everything"
  domains = ["*"]
  tags    = var.tags
}

resource "aws_route53_resolver_firewall_rule_group" "workspace" {
  name = "${var.name_prefix}-workspace-dns-rules"
  tags = var.tags
}

resource "aws_route53_resolver_firewall_rule" "allow" {
  name                    = "allow-listed"
  action                  = "ALLOW"
  firewall_domain_list_id = aws_route53_resolver_firewall_domain_list.allowed.id
  firewall_rule_group_id  = aws_route53_resolver_firewall_rule_group.workspace.id
  priority                = 1
}

resource "aws_route53_resolver_firewall_rule" "block_rest" {
  name                    = "block-everything-else"
  action                  = "BLOCK"
  block_response          = "NXDOMAIN"
  firewall_domain_list_id = aws_route53_resolver_firewall_domain_list.everything.id
  firewall_rule_group_id  = aws_route53_resolver_firewall_rule_group.workspace.id
  priority                = 99
}

resource "aws_route53_resolver_firewall_rule_group_association" "vpc" {
  name                   = "${var.name_prefix}-workspace-dns-rules"
  firewall_rule_group_id = aws_route53_resolver_firewall_rule_group.workspace.id
  vpc_id                 = var.vpc_id
  priority               = 101
  # On in production; off where the environment is destroyed and rebuilt
  # (staging): with it on, terraform destroy cannot remove the association.
  mutation_protection = var.dns_firewall_mutation_protection ? "ENABLED" : "DISABLED"
  tags                = var.tags
}

resource "aws_route53_resolver_firewall_config" "vpc" {
  resource_id        = var.vpc_id
  firewall_fail_open = "DISABLED"
}
