package terraform_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// TestWorkspaceIngressIsJustified: the seed (§4.2, §4.3) opens only the
// agent's 9000 to the backend, and the credential proxy has no port
// mappings. The security module opens every port of its
// workspace_from_backend rule; docs/security.md must say, for each, why it
// is open and what protects it, in its "Workspace network (ECS)" section,
// and name the deviation from the seed.
func TestWorkspaceIngressIsJustified(t *testing.T) {
	t.Parallel()
	n := loadNames(t)
	files := moduleFiles(t, filepath.Join(modulesDir(t), "security"))
	rules := blocks(files, "resource", "aws_vpc_security_group_ingress_rule", "workspace_from_backend")
	if len(rules) != 1 {
		t.Fatalf("security module: %d workspace_from_backend rules, want 1", len(rules))
	}
	fe, ok := rules[0].Body.Attributes["for_each"]
	if !ok {
		t.Fatal("workspace_from_backend has no for_each")
	}
	obj, ok := fe.Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("workspace_from_backend for_each is not an object of ports: %s", exprSource(files, fe.Expr))
	}
	ports := map[string]int{"var.agent_port": n.WorkspaceTask.AgentPort, "var.proxy_admin_port": n.WorkspaceTask.ProxyAdminPort}
	var open []int
	for _, item := range obj.Items {
		src := strings.TrimSpace(exprSource(files, item.ValueExpr))
		p, ok := ports[src]
		if !ok {
			t.Fatalf("workspace_from_backend opens %s, which this test does not know: justify it in docs/security.md and add it here", src)
		}
		open = append(open, p)
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n### Workspace network (ECS)\n")
	if !ok {
		t.Fatal(`docs/security.md has no "### Workspace network (ECS)" section justifying the workspace group's ingress`)
	}
	if i := strings.Index(section, "\n#"); i >= 0 {
		section = section[:i]
	}
	section = strings.Join(strings.Fields(section), " ") // words, not lines
	for _, p := range open {
		if !strings.Contains(section, strconv.Itoa(p)) {
			t.Errorf("docs/security.md, Workspace network (ECS): port %d is open to the backend but not justified", p)
		}
	}
	if len(open) > 1 && !strings.Contains(section, "port mappings") {
		t.Error(`docs/security.md, Workspace network (ECS): more than the seed's one port is open; say why the seed's "port mappings" (agent 9000 only) do not hold`)
	}
}
