package terraform_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCapacityProviderNameComesFromTheAssociation: the backend service's
// capacity_provider_strategy and the runtime's ECS_CAPACITY_PROVIDER take
// the provider's name from the ecs module's output. Read from
// aws_ecs_capacity_provider, the name is known before the provider is
// associated with the cluster, so a first apply may create the service
// (and start workspaces) too early: CreateService fails with "capacity
// provider is not associated with the cluster". Read from
// aws_ecs_cluster_capacity_providers, the output depends on the
// association. Values cannot show this (the names are equal); references
// can.
func TestCapacityProviderNameComesFromTheAssociation(t *testing.T) {
	t.Parallel()
	files := moduleFiles(t, filepath.Join(modulesDir(t), "ecs"))
	outs := blocks(files, "output", "capacity_provider_name")
	if len(outs) != 1 {
		t.Fatalf("ecs module: %d outputs capacity_provider_name, want 1", len(outs))
	}
	var fromAssociation bool
	for _, tr := range traversals(outs[0].Body) {
		if len(tr) < 2 {
			continue
		}
		root := tr.RootName()
		if root == "aws_ecs_capacity_provider" {
			t.Errorf("capacity_provider_name reads aws_ecs_capacity_provider directly: it does not wait for the cluster association")
		}
		if root == "aws_ecs_cluster_capacity_providers" {
			fromAssociation = true
		}
	}
	if !fromAssociation {
		t.Errorf("capacity_provider_name must be read from aws_ecs_cluster_capacity_providers (the association)")
	}
}

// TestSecurityGroupRulesAllAsserted: the security module's terraform test
// checks the workspace group's ingress and egress by going through every
// rule resource of the module (a test cannot enumerate resources), so a
// new rule resource must be added there, or a rule opening the workspace
// group (22 from 0.0.0.0/0, say) would pass it unseen.
func TestSecurityGroupRulesAllAsserted(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(modulesDir(t), "security")
	test, err := os.ReadFile(filepath.Join(dir, "tests", "security.tftest.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	files := moduleFiles(t, dir)
	for _, typ := range []string{"aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule", "aws_security_group_rule"} {
		for _, b := range blocks(files, "resource", typ) {
			if ref := typ + "." + b.Labels[1]; !strings.Contains(string(test), ref) {
				t.Errorf("%s is not in modules/security/tests/security.tftest.hcl's workspace_security_group assertions", ref)
			}
		}
	}
}
