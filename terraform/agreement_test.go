package terraform_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// TestBackendEnvironmentDocumented keeps the backend task definition on the
// variable names config/ reads (docs/configuration.md).
func TestBackendEnvironmentDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := moduleFiles(t, filepath.Join(modulesDir(t), "services"))
	locs := locals(files)
	for _, local := range []string{"backend_environment", "backend_secrets"} {
		obj, ok := locs[local].(*hclsyntax.ObjectConsExpr)
		if !ok {
			t.Fatalf("services: local.%s is not an object", local)
		}
		if len(obj.Items) == 0 {
			t.Fatalf("services: local.%s is empty", local)
		}
		for _, item := range obj.Items {
			name := strings.Trim(exprSource(files, item.KeyExpr), `"`)
			if !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("backend %s sets %s, which docs/configuration.md does not document", local, name)
			}
		}
	}
}

// TestProxyImageMatchesTaskDefinition: the sidecar's health check runs the
// binary where both proxy images put it, as the user they declare.
func TestProxyImageMatchesTaskDefinition(t *testing.T) {
	t.Parallel()
	var proxy containerDef
	for _, c := range renderWorkspace(t) {
		if c.Name == loadNames(t).WorkspaceTask.ProxyContainer {
			proxy = c
		}
	}
	if proxy.HealthCheck == nil || len(proxy.HealthCheck.Command) < 2 {
		t.Fatal("proxy has no health check command")
	}
	binary := proxy.HealthCheck.Command[1]
	for _, df := range []string{"cmd/credential-proxy/Dockerfile", "images/credential-proxy/Dockerfile"} {
		src, err := os.ReadFile(filepath.Join(repoRoot(t), df))
		if os.IsNotExist(err) && df == "images/credential-proxy/Dockerfile" {
			continue // the local image is optional
		}
		if err != nil {
			t.Fatal(err)
		}
		ep := regexp.MustCompile(`(?m)^ENTRYPOINT \["([^"]+)"`).FindSubmatch(src)
		if ep == nil || string(ep[1]) != binary {
			t.Errorf("%s: ENTRYPOINT %q, the task definition's health check runs %s", df, ep, binary)
		}
		user := regexp.MustCompile(`(?m)^USER (\S+)`).FindSubmatch(src)
		if user == nil || string(user[1]) != proxy.User {
			t.Errorf("%s: USER %q, the task definition runs the proxy as %s", df, user, proxy.User)
		}
	}
}

// TestBackendImageMatchesTaskDefinition: the backend task definition runs
// the image's user and health-checks the image's binary.
func TestBackendImageMatchesTaskDefinition(t *testing.T) {
	t.Parallel()
	files := moduleFiles(t, filepath.Join(modulesDir(t), "services"))
	obj, ok := locals(files)["backend_container"].(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatal("services: local.backend_container is not an object")
	}
	attrs := map[string]string{}
	for _, item := range obj.Items {
		attrs[strings.Trim(exprSource(files, item.KeyExpr), `"`)] = exprSource(files, item.ValueExpr)
	}
	src, err := os.ReadFile(filepath.Join(repoRoot(t), "cmd", "workspaced", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	user := regexp.MustCompile(`(?m)^USER (\S+)`).FindSubmatch(src)
	if user == nil || `"`+string(user[1])+`"` != attrs["user"] {
		t.Errorf("cmd/workspaced/Dockerfile USER %q, task definition user %s", user, attrs["user"])
	}
	ep := regexp.MustCompile(`(?m)^ENTRYPOINT \["([^"]+)"`).FindSubmatch(src)
	if ep == nil || !strings.Contains(attrs["healthCheck"], `"`+string(ep[1])+`", "healthcheck"`) {
		t.Errorf("backend health check %s does not run the image's entrypoint %q healthcheck", attrs["healthCheck"], ep)
	}
}
