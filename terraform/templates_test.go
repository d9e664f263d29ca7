package terraform_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Container definition fields the tests inspect (a subset of the ECS API).
type containerDef struct {
	Name                   string   `json:"name"`
	Image                  string   `json:"image"`
	Essential              *bool    `json:"essential"`
	User                   string   `json:"user"`
	ReadonlyRootFilesystem *bool    `json:"readonlyRootFilesystem"`
	Privileged             *bool    `json:"privileged"`
	DockerSecurityOptions  []string `json:"dockerSecurityOptions"`
	PortMappings           []struct {
		ContainerPort int    `json:"containerPort"`
		Protocol      string `json:"protocol"`
	} `json:"portMappings"`
	DependsOn []struct {
		ContainerName string `json:"containerName"`
		Condition     string `json:"condition"`
	} `json:"dependsOn"`
	LinuxParameters struct {
		Capabilities struct {
			Add  []string `json:"add"`
			Drop []string `json:"drop"`
		} `json:"capabilities"`
		InitProcessEnabled *bool `json:"initProcessEnabled"`
		SharedMemorySize   int64 `json:"sharedMemorySize"`
		Tmpfs              []struct {
			ContainerPath string   `json:"containerPath"`
			Size          int      `json:"size"`
			MountOptions  []string `json:"mountOptions"`
		} `json:"tmpfs"`
	} `json:"linuxParameters"`
	Ulimits []struct {
		Name      string `json:"name"`
		SoftLimit int    `json:"softLimit"`
		HardLimit int    `json:"hardLimit"`
	} `json:"ulimits"`
	Environment []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"environment"`
	Secrets []struct {
		Name      string `json:"name"`
		ValueFrom string `json:"valueFrom"`
	} `json:"secrets"`
	CPU               int `json:"cpu"`
	Memory            int `json:"memory"`
	MemoryReservation int `json:"memoryReservation"`
	HealthCheck       *struct {
		Command []string `json:"command"`
	} `json:"healthCheck"`
	LogConfiguration struct {
		LogDriver string            `json:"logDriver"`
		Options   map[string]string `json:"options"`
	} `json:"logConfiguration"`
}

func (c containerDef) env() map[string]string {
	m := map[string]string{}
	for _, e := range c.Environment {
		m[e.Name] = e.Value
	}
	return m
}

func (c containerDef) secretNames() []string {
	var s []string
	for _, e := range c.Secrets {
		s = append(s, e.Name)
	}
	slices.Sort(s)
	return s
}

func workspaceTemplate(t testing.TB) string {
	return filepath.Join(repoRoot(t), "terraform", "modules", "services", "templates", "workspace-containers.json.tftpl")
}

// exampleVars reads the example values shipped next to the template.
func exampleVars(t testing.TB) map[string]string {
	t.Helper()
	var raw map[string]string
	readJSON(t, filepath.Join(repoRoot(t), "terraform", "modules", "services", "templates", "workspace-containers.example.json"), &raw)
	vars := map[string]string{}
	for k, v := range raw {
		if !strings.HasPrefix(k, "_") {
			vars[k] = v
		}
	}
	return vars
}

func renderWorkspace(t testing.TB) []containerDef {
	t.Helper()
	out, err := render(workspaceTemplate(t), exampleVars(t))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(out) {
		t.Fatalf("rendered workspace container definitions are not valid JSON:\n%s", out)
	}
	var defs []containerDef
	dec := json.NewDecoder(strings.NewReader(string(out)))
	if err := dec.Decode(&defs); err != nil {
		t.Fatalf("decode container definitions: %v", err)
	}
	return defs
}

func TestWorkspaceTemplateExampleCoversEveryVariable(t *testing.T) {
	t.Parallel()
	vars := exampleVars(t)
	used := templateVars(t, workspaceTemplate(t))
	for _, v := range used {
		if _, ok := vars[v]; !ok {
			t.Errorf("template variable %q has no example value", v)
		}
	}
	for k := range vars {
		if !slices.Contains(used, k) {
			t.Errorf("example value %q is not a template variable", k)
		}
	}
}

func TestWorkspaceContainersMatchNamesAndHardening(t *testing.T) {
	t.Parallel()
	n := loadNames(t)
	defs := renderWorkspace(t)
	if len(defs) != 2 {
		t.Fatalf("want 2 containers (agent, proxy), got %d", len(defs))
	}
	byName := map[string]containerDef{}
	for _, d := range defs {
		byName[d.Name] = d
	}
	agent, ok := byName[n.WorkspaceTask.AgentContainer]
	if !ok {
		t.Fatalf("no container named %q", n.WorkspaceTask.AgentContainer)
	}
	proxy, ok := byName[n.WorkspaceTask.ProxyContainer]
	if !ok {
		t.Fatalf("no container named %q", n.WorkspaceTask.ProxyContainer)
	}
	proxyURL := fmt.Sprintf("http://%s:%d", n.WorkspaceTask.ProxyListenHost, n.WorkspaceTask.ProxyListenPort)

	t.Run("both", func(t *testing.T) {
		for _, c := range defs {
			if c.User == "" || strings.HasPrefix(c.User, "0") || strings.HasPrefix(c.User, "root") {
				t.Errorf("%s: user %q, want a non-root uid:gid", c.Name, c.User)
			}
			if c.ReadonlyRootFilesystem == nil || !*c.ReadonlyRootFilesystem {
				t.Errorf("%s: readonlyRootFilesystem not true", c.Name)
			}
			if c.Privileged != nil && *c.Privileged {
				t.Errorf("%s: privileged", c.Name)
			}
			if c.Essential == nil || !*c.Essential {
				t.Errorf("%s: not essential", c.Name)
			}
			if !slices.Contains(c.DockerSecurityOptions, "no-new-privileges:true") {
				t.Errorf("%s: dockerSecurityOptions %v lack no-new-privileges:true", c.Name, c.DockerSecurityOptions)
			}
			if !slices.Equal(c.LinuxParameters.Capabilities.Drop, []string{"ALL"}) {
				t.Errorf("%s: capabilities drop %v, want [ALL]", c.Name, c.LinuxParameters.Capabilities.Drop)
			}
			if c.LinuxParameters.InitProcessEnabled == nil || *c.LinuxParameters.InitProcessEnabled {
				t.Errorf("%s: initProcessEnabled must be false", c.Name)
			}
			if c.Memory == 0 || c.CPU == 0 || c.MemoryReservation == 0 || c.MemoryReservation > c.Memory {
				t.Errorf("%s: cpu %d memory %d reservation %d", c.Name, c.CPU, c.Memory, c.MemoryReservation)
			}
			lc := c.LogConfiguration
			if lc.LogDriver != "awslogs" || lc.Options["awslogs-group"] == "" || lc.Options["awslogs-region"] == "" || lc.Options["awslogs-stream-prefix"] == "" {
				t.Errorf("%s: log configuration %+v", c.Name, lc)
			}
			for _, s := range c.Secrets {
				if !strings.HasPrefix(s.ValueFrom, "arn:") {
					t.Errorf("%s: secret %s valueFrom %q is not an ARN", c.Name, s.Name, s.ValueFrom)
				}
			}
		}
	})

	t.Run("agent", func(t *testing.T) {
		if agent.User != "1000:1000" {
			t.Errorf("agent user %q, want 1000:1000 (docs/contracts.md §6)", agent.User)
		}
		if got := agent.LinuxParameters.Capabilities.Add; !sameSet(got, []string{"CHOWN", "SETUID", "SETGID", "DAC_OVERRIDE"}) {
			t.Errorf("capabilities add %v", got)
		}
		if len(agent.PortMappings) != 1 || agent.PortMappings[0].ContainerPort != n.WorkspaceTask.AgentPort || agent.PortMappings[0].Protocol != "tcp" {
			t.Errorf("port mappings %+v, want only tcp %d", agent.PortMappings, n.WorkspaceTask.AgentPort)
		}
		if len(agent.DependsOn) != 1 || agent.DependsOn[0].ContainerName != n.WorkspaceTask.ProxyContainer || agent.DependsOn[0].Condition != "HEALTHY" {
			t.Errorf("dependsOn %+v, want %s HEALTHY", agent.DependsOn, n.WorkspaceTask.ProxyContainer)
		}
		// docs/contracts.md §6: path → size (MiB), noexec.
		want := map[string]struct {
			size   int
			noexec bool
		}{
			"/tmp":                 {256, false},
			"/var/tmp":             {64, true},
			"/run":                 {16, true},
			"/home/appuser/.cache": {256, true},
			"/home/appuser":        {64, true},
			"/workspace":           {512, false},
		}
		if len(agent.LinuxParameters.Tmpfs) != len(want) {
			t.Errorf("%d tmpfs mounts, want %d", len(agent.LinuxParameters.Tmpfs), len(want))
		}
		for _, m := range agent.LinuxParameters.Tmpfs {
			w, ok := want[m.ContainerPath]
			if !ok {
				t.Errorf("unexpected tmpfs %s", m.ContainerPath)
				continue
			}
			if m.Size != w.size {
				t.Errorf("tmpfs %s size %d, want %d", m.ContainerPath, m.Size, w.size)
			}
			if !slices.Contains(m.MountOptions, "nosuid") {
				t.Errorf("tmpfs %s lacks nosuid", m.ContainerPath)
			}
			// Docker mounts tmpfs noexec unless "exec" is given, so the
			// executable ones must say so.
			if w.noexec && !slices.Contains(m.MountOptions, "noexec") {
				t.Errorf("tmpfs %s lacks noexec", m.ContainerPath)
			}
			if !w.noexec && !slices.Contains(m.MountOptions, "exec") {
				t.Errorf("tmpfs %s lacks exec (Docker's tmpfs default is noexec)", m.ContainerPath)
			}
		}
		env := agent.env()
		wantEnv := map[string]string{
			"CLAUDE_CODE_USE_BEDROCK":       "1",
			"CLAUDE_CODE_SKIP_BEDROCK_AUTH": "1",
			"ANTHROPIC_BEDROCK_BASE_URL":    proxyURL,
			"HTTP_PROXY":                    proxyURL,
			"HTTPS_PROXY":                   proxyURL,
			"NO_PROXY":                      "localhost,127.0.0.1",
			"HOME":                          "/home/appuser",
			"WORKSPACE_LISTEN_MODE":         "tcp",
			"WORKSPACE_LISTEN_PORT":         fmt.Sprint(n.WorkspaceTask.AgentPort),
		}
		for k, v := range wantEnv {
			if env[k] != v {
				t.Errorf("env %s=%q, want %q", k, env[k], v)
			}
		}
		// Invariant 5: no credential reaches the workspace.
		if len(agent.Secrets) != 0 {
			t.Errorf("agent has secrets %v", agent.secretNames())
		}
		for k := range env {
			if strings.HasPrefix(k, "AWS_") || strings.Contains(k, "TOKEN") || strings.Contains(k, "SECRET") {
				t.Errorf("agent environment carries %s", k)
			}
		}
		if !hasUlimit(agent, "nproc") {
			t.Error("agent has no nproc ulimit")
		}
		if agent.Memory != 2048 {
			t.Errorf("agent memory %d MiB, want 2048 (docs/contracts.md §6)", agent.Memory)
		}
	})

	t.Run("proxy", func(t *testing.T) {
		// Not the workspace's uid: the agent must not signal, trace or read
		// the /proc of the process holding the Bedrock keys, and RLIMIT_NPROC
		// (counted per uid on the host) stays separate.
		if proxy.User == agent.User {
			t.Errorf("proxy runs as the agent's user %q", proxy.User)
		}
		if len(proxy.LinuxParameters.Capabilities.Add) != 0 {
			t.Errorf("proxy adds capabilities %v", proxy.LinuxParameters.Capabilities.Add)
		}
		env := proxy.env()
		wantEnv := map[string]string{
			"PROXY_LISTEN_HOST":      n.WorkspaceTask.ProxyListenHost,
			"PROXY_LISTEN_PORT":      fmt.Sprint(n.WorkspaceTask.ProxyListenPort),
			"PROXY_ADMIN_LISTEN":     fmt.Sprintf("0.0.0.0:%d", n.WorkspaceTask.ProxyAdminPort),
			"PROXY_LOG_ALL_REQUESTS": "true",
		}
		for k, v := range wantEnv {
			if env[k] != v {
				t.Errorf("env %s=%q, want %q", k, env[k], v)
			}
		}
		if env["AWS_REGION"] == "" {
			t.Error("proxy has no AWS_REGION")
		}
		if _, ok := env["PROXY_ADMIN_TOKEN"]; ok {
			t.Error("PROXY_ADMIN_TOKEN must come per task from the RunTask override, not the task definition")
		}
		if got, want := proxy.secretNames(), []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PROXY_DOMAIN_WHITELIST"}; !slices.Equal(got, want) {
			t.Errorf("proxy secrets %v, want %v", got, want)
		}
		if proxy.HealthCheck == nil || !slices.Equal(proxy.HealthCheck.Command, []string{"CMD", "/credential-proxy", "healthcheck"}) {
			t.Errorf("proxy health check %+v", proxy.HealthCheck)
		}
		for _, pm := range proxy.PortMappings {
			if pm.ContainerPort == n.WorkspaceTask.ProxyListenPort {
				t.Errorf("proxy maps its listen port %d: it must stay on loopback", pm.ContainerPort)
			}
		}
	})
}

func hasUlimit(c containerDef, name string) bool {
	for _, u := range c.Ulimits {
		if u.Name == name && u.SoftLimit > 0 && u.SoftLimit <= u.HardLimit {
			return true
		}
	}
	return false
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestTaskStateChangePatternRenders(t *testing.T) {
	t.Parallel()
	n := loadNames(t)
	path := filepath.Join(repoRoot(t), "terraform", "modules", "messaging", "templates", "task-state-change-pattern.json.tftpl")
	clusterARN := "arn:aws:ecs:us-east-1:123456789012:cluster/workspaced-staging"
	out, err := render(path, map[string]string{"cluster_arn": clusterARN, "started_by_prefix": n.StartedBy})
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
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("rendered pattern is not valid JSON: %v\n%s", err, out)
	}
	if !slices.Equal(p.Source, []string{"aws.ecs"}) || !slices.Equal(p.DetailType, []string{"ECS Task State Change"}) {
		t.Errorf("source %v detail-type %v", p.Source, p.DetailType)
	}
	if !slices.Equal(p.Detail.ClusterArn, []string{clusterARN}) {
		t.Errorf("clusterArn %v", p.Detail.ClusterArn)
	}
	if len(p.Detail.StartedBy) != 1 || p.Detail.StartedBy[0].Prefix != n.StartedBy {
		t.Errorf("startedBy %+v, want prefix %q", p.Detail.StartedBy, n.StartedBy)
	}
}
