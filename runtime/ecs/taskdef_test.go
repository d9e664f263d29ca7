package ecs_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/runtime/ecs"
	"github.com/workspaced/workspaced/workspace"
)

// names is the part of deploy/names.json the runtime must agree with.
type names struct {
	WorkspaceTask struct {
		Family         string `json:"family"`
		AgentContainer string `json:"agent_container"`
		ProxyContainer string `json:"proxy_container"`
		AgentPort      int    `json:"agent_port"`
	} `json:"workspace_task"`
	StartedBy string `json:"started_by"`
}

func readNames(t *testing.T) names {
	t.Helper()
	root, err := ecsdouble.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy/names.json"))
	if err != nil {
		t.Fatal(err)
	}
	var n names
	if err := json.Unmarshal(b, &n); err != nil {
		t.Fatalf("parse deploy/names.json: %v", err)
	}
	return n
}

// TestTaskDefinitionAgreement checks that what runtime/ecs assumes about the
// workspace task (container names, agent port, override target, environment)
// is what the Terraform template defines and deploy/names.json records.
func TestTaskDefinitionAgreement(t *testing.T) {
	t.Parallel()
	n := readNames(t)
	if n.WorkspaceTask.AgentContainer != ecs.DefaultAgentContainer || n.WorkspaceTask.ProxyContainer != ecs.DefaultProxyContainer ||
		n.WorkspaceTask.AgentPort != ecs.DefaultAgentPort || n.StartedBy != ecs.DefaultStartedBy {
		t.Errorf("deploy/names.json %+v disagrees with runtime/ecs defaults (%s, %s, %d, %s)", n,
			ecs.DefaultAgentContainer, ecs.DefaultProxyContainer, ecs.DefaultAgentPort, ecs.DefaultStartedBy)
	}
	defs, err := ecsdouble.LoadContainerDefinitions(nil)
	if err != nil {
		t.Fatalf("render %s: %v", ecsdouble.ContainersTemplate, err)
	}
	byName := map[string]ecsdouble.ContainerDefinition{}
	for _, d := range defs {
		byName[d.Name] = d
	}
	agent, okA := byName[ecs.DefaultAgentContainer]
	proxy, okP := byName[ecs.DefaultProxyContainer]
	if !okA || !okP {
		t.Fatalf("template containers %v lack %s or %s", keys(byName), ecs.DefaultAgentContainer, ecs.DefaultProxyContainer)
	}
	if !agent.IsEssential() || !proxy.IsEssential() {
		t.Error("both containers must be essential: a task without its agent or proxy is useless")
	}

	// The backend dials the agent at <ip>:AgentPort.
	port := false
	for _, pm := range agent.PortMappings {
		port = port || (pm.ContainerPort == ecs.DefaultAgentPort && pm.Protocol == "tcp")
	}
	if !port {
		t.Errorf("agent portMappings %+v lack tcp/%d", agent.PortMappings, ecs.DefaultAgentPort)
	}
	if v, _ := agent.Env("WORKSPACE_LISTEN_PORT"); v != strconv.Itoa(ecs.DefaultAgentPort) {
		t.Errorf("agent WORKSPACE_LISTEN_PORT = %q, want %d", v, ecs.DefaultAgentPort)
	}
	if v, _ := agent.Env("WORKSPACE_LISTEN_MODE"); v != "tcp" {
		t.Errorf("agent WORKSPACE_LISTEN_MODE = %q, want tcp", v)
	}

	// The agent waits for a healthy proxy; the proxy is the override target
	// and the admin token comes only through the override.
	healthy := false
	for _, dep := range agent.DependsOn {
		healthy = healthy || (dep.ContainerName == ecs.DefaultProxyContainer && dep.Condition == "HEALTHY")
	}
	if !healthy || proxy.HealthCheck == nil {
		t.Errorf("agent must dependOn a HEALTHY %s with a health check", ecs.DefaultProxyContainer)
	}
	for _, d := range defs {
		if _, ok := d.Env(ecs.ProxyAdminTokenEnv); ok {
			t.Errorf("container %s defines %s in the task definition; it comes per task from the override", d.Name, ecs.ProxyAdminTokenEnv)
		}
	}
	if len(agent.Secrets) != 0 {
		t.Errorf("the agent container has secrets %+v; credentials belong to the proxy only", agent.Secrets)
	}
	for _, kv := range agent.Environment {
		if strings.Contains(kv.Name, "SECRET") || strings.HasPrefix(kv.Name, "AWS_") {
			t.Errorf("agent environment has %s", kv.Name)
		}
	}
	if _, ok := proxy.Env("PROXY_ADMIN_LISTEN"); !ok {
		t.Errorf("proxy has no PROXY_ADMIN_LISTEN: the admin token would protect nothing")
	}

	// What Start sends must name only containers of the definition.
	d := ecsdouble.Start(t, ecsdouble.Options{Containers: defs, Family: n.WorkspaceTask.Family})
	rt, _ := newRuntime(t, d)
	if _, err := rt.Start(testCtx(t), workspace.StartSpec{Token: token(t), Conversation: "agree"}); err != nil {
		t.Fatalf("Start against the rendered task definition: %v", err)
	}
}

// TestTaskEventPatternMatchesStartedBy checks that the EventBridge rule's
// startedBy prefix admits the runtime's startedBy.
func TestTaskEventPatternMatchesStartedBy(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"cluster_arn": "arn:aws:ecs:us-east-1:000000000000:cluster/x", "started_by_prefix": ecs.DefaultStartedBy}
	b, err := ecsdouble.RenderTemplateFile(ecsdouble.TaskEventPatternTemplate, vars)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Source     []string `json:"source"`
		DetailType []string `json:"detail-type"`
		Detail     struct {
			ClusterArn []string `json:"clusterArn"`
			StartedBy  []struct {
				Prefix string `json:"prefix"`
			} `json:"startedBy"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("pattern is not JSON: %v\n%s", err, b)
	}
	if len(p.Detail.StartedBy) != 1 || !strings.HasPrefix(ecs.DefaultStartedBy, p.Detail.StartedBy[0].Prefix) {
		t.Errorf("pattern startedBy %+v does not admit %q", p.Detail.StartedBy, ecs.DefaultStartedBy)
	}
	if len(p.Detail.ClusterArn) != 1 || p.Detail.ClusterArn[0] != vars["cluster_arn"] {
		t.Errorf("pattern clusterArn %v", p.Detail.ClusterArn)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
