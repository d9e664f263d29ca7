package localstack_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/internal/testenv"
)

// TestComposeFileValid runs `docker-compose config -q` on every profile.
func TestComposeFileValid(t *testing.T) {
	t.Parallel()
	compose := testenv.LookPath(t, "docker-compose")
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, compose, "--profile", "sqs", "--profile", "images", "config", "-q")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
}

// composeEnvNotWorkspaced are variables in docker-compose.yml read by
// something other than workspaced's config (LocalStack, its init script, the
// AWS SDK's credential chain).
var composeEnvNotWorkspaced = map[string]bool{
	"SERVICES": true, "AWS_DEFAULT_REGION": true, "WORKSPACED_NAME_PREFIX": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
}

// TestComposeUsesDocumentedVariables keeps docker-compose.yml on the names of
// docs/configuration.md, and its mounts and Dockerfiles on files that exist.
func TestComposeUsesDocumentedVariables(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	compose, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	keys := regexp.MustCompile(`(?m)^\s+([A-Z][A-Z0-9_]+):`).FindAllSubmatch(compose, -1)
	if len(keys) == 0 {
		t.Fatal("no environment variables found in docker-compose.yml")
	}
	for _, k := range keys {
		name := string(k[1])
		if composeEnvNotWorkspaced[name] {
			continue
		}
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docker-compose.yml sets %s, which docs/configuration.md does not document", name)
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+- \./([^:]+):`).FindAllSubmatch(compose, -1) {
		if _, err := os.Stat(filepath.Join(root, string(m[1]))); err != nil {
			t.Errorf("docker-compose.yml mounts ./%s: %v", m[1], err)
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+dockerfile: (\S+)`).FindAllSubmatch(compose, -1) {
		if _, err := os.Stat(filepath.Join(root, string(m[1]))); err != nil {
			t.Errorf("docker-compose.yml builds %s: %v", m[1], err)
		}
	}
}
