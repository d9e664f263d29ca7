package terraform_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
)

// repoRoot is the repository root, found from this file's location so the
// tests work from any working directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("locate test file")
	}
	return filepath.Dir(filepath.Dir(file))
}

// names mirrors deploy/names.json.
type names struct {
	Queues struct {
		WorkspaceRequested string `json:"workspace_requested"`
		WorkspaceReleased  string `json:"workspace_released"`
		TaskEvents         string `json:"task_events"`
	} `json:"queues"`
	DeadLetterSuffix string `json:"dead_letter_suffix"`
	WorkspaceTask    struct {
		Family          string `json:"family"`
		AgentContainer  string `json:"agent_container"`
		ProxyContainer  string `json:"proxy_container"`
		AgentPort       int    `json:"agent_port"`
		ProxyListenHost string `json:"proxy_listen_host"`
		ProxyListenPort int    `json:"proxy_listen_port"`
		ProxyAdminPort  int    `json:"proxy_admin_port"`
	} `json:"workspace_task"`
	StartedBy                  string `json:"started_by"`
	WorkspaceFilesBucketSuffix string `json:"workspace_files_bucket_suffix"`
}

func loadNames(t testing.TB) names {
	t.Helper()
	var n names
	readJSON(t, filepath.Join(repoRoot(t), "deploy", "names.json"), &n)
	return n
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

var (
	interpolation = regexp.MustCompile(`\$\{([^}]*)\}`)
	plainName     = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
)

// render substitutes every ${name} of a template file with vars[name]
// verbatim, the way the tests and the ECS test double render the Terraform
// templates. Anything but plain ${name} interpolations is an error: the
// templates must stay renderable without Terraform.
func render(path string, vars map[string]string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	if regexp.MustCompile(`%\{`).Match(b) {
		return nil, fmt.Errorf("%s: template directives (%%{...}) are not allowed", path)
	}
	var missing []string
	out := interpolation.ReplaceAllFunc(b, func(m []byte) []byte {
		name := string(interpolation.FindSubmatch(m)[1])
		if !plainName.MatchString(name) {
			missing = append(missing, "not a plain name: "+name)
			return m
		}
		v, ok := vars[name]
		if !ok {
			missing = append(missing, "no value for "+name)
			return m
		}
		return []byte(v)
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: %v", path, missing)
	}
	return out, nil
}

// templateVars lists the distinct ${name}s of a template file.
func templateVars(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	seen := map[string]bool{}
	var vars []string
	for _, m := range interpolation.FindAllSubmatch(b, -1) {
		if n := string(m[1]); !seen[n] {
			seen[n] = true
			vars = append(vars, n)
		}
	}
	return vars
}
