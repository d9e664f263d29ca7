package docker

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/workspaced/workspaced/runtime/runtimetest"
	"github.com/workspaced/workspaced/selftest"
	"github.com/workspaced/workspaced/workspace"
)

// weakenedEngine creates every container with a deliberately weakened
// configuration: the self-test must notice.
type weakenedEngine struct {
	Engine
	weaken func(*container.Config, *container.HostConfig)
}

func (w weakenedEngine) ContainerCreate(ctx context.Context, cfg *container.Config, host *container.HostConfig, net *network.NetworkingConfig, p *ocispec.Platform, name string) (container.CreateResponse, error) {
	w.weaken(cfg, host)
	return w.Engine.ContainerCreate(ctx, cfg, host, net, p, name)
}

// selfTestEnv is newEnv with the engine wrapped by weaken (nil: as is).
func selfTestEnv(t *testing.T, opts func(*Options), weaken func(*container.Config, *container.HostConfig)) *env {
	t.Helper()
	e := newEnv(t, opts) // registers the cleanup of every labelled container
	if weaken == nil {
		return e
	}
	var err error
	o := e.rt.opts
	e.rt, err = New(weakenedEngine{Engine: e.cli, weaken: weaken}, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// runSelfTest runs workspace-selftest through the agent and parses its
// report.
func (e *env) runSelfTest(t *testing.T, info workspace.Info, args ...string) (selftest.Report, result) {
	t.Helper()
	r := e.run(t, info, append([]string{selftest.Binary}, args...)...)
	rep, err := selftest.Parse([]byte(r.Output))
	if err != nil {
		t.Fatalf("parse report: %v; output:\n%s", err, r.Output)
	}
	return rep, r
}

// TestSelfTestPassesInAWorkspace runs the self-test in a workspace started
// by the Docker runtime: every check passes or does not apply.
func TestSelfTestPassesInAWorkspace(t *testing.T) {
	t.Parallel()
	e := selfTestEnv(t, nil, nil)
	info := e.startReady(t, workspace.StartSpec{Token: runtimetest.Token(t), Conversation: "selftest"})
	rep, r := e.runSelfTest(t, info, "-egress-probe", hostListener(t))
	t.Logf("report:\n%s", r.Output)
	if !rep.Passed || r.ExitCode != 0 {
		t.Errorf("self-test failed (exit %d): %v", r.ExitCode, rep.Failed())
	}
	if rep.Runtime != selftest.RuntimeDocker {
		t.Errorf("runtime = %q, want docker", rep.Runtime)
	}
	if rep.Limits.PidsMax != "256" || rep.Limits.MemoryMax != "2147483648" {
		t.Errorf("limits = %+v, want pids 256, memory 2 GiB", rep.Limits)
	}
	for _, id := range []string{"network.dns_firewall", "network.proxy_denies"} {
		if c, _ := rep.Find(id); c.Status != selftest.NotApplicable {
			t.Errorf("%s = %s, want not-applicable on Docker without a proxy", id, c.Status)
		}
	}
	if c, _ := rep.Find("resources.fork_bomb"); !strings.Contains(c.Observed, "EAGAIN") {
		t.Errorf("fork bomb: %q, want it stopped by EAGAIN", c.Observed)
	}
}

// TestSelfTestCatchesEachWeakening starts deliberately weakened workspaces
// and checks that exactly the matching checks fail.
func TestSelfTestCatchesEachWeakening(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(secretFile, []byte("[default]\naws_access_key_id = AKIAABCDEFGHIJKLMNOP\naws_secret_access_key = fake\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		opts   func(*Options)
		weaken func(*container.Config, *container.HostConfig)
		before []string // a command run before the self-test
		want   []string
	}{
		{name: "extra capability",
			weaken: func(_ *container.Config, h *container.HostConfig) { h.CapAdd = append(h.CapAdd, "NET_RAW") },
			want:   []string{"identity.capabilities"}},
		{name: "writable root",
			weaken: func(_ *container.Config, h *container.HostConfig) { h.ReadonlyRootfs = false },
			want:   []string{"filesystem.root_readonly"}},
		{name: "mounted fake secret",
			weaken: func(_ *container.Config, h *container.HostConfig) {
				h.Binds = append(h.Binds, secretFile+":/home/appuser/.aws/credentials:ro")
			},
			// A host file mounted in is by nature also a host path.
			want: []string{"credentials.files", "filesystem.host_paths"}},
		{name: "fake secret written to the workspace",
			before: []string{"sh", "-c", "echo 'aws_secret_access_key = fake' > /workspace/.env"},
			want:   []string{"credentials.files"}},
		{name: "seccomp unconfined",
			weaken: func(_ *container.Config, h *container.HostConfig) {
				for i, o := range h.SecurityOpt {
					if strings.HasPrefix(o, "seccomp=") {
						h.SecurityOpt[i] = "seccomp=unconfined"
					}
				}
			},
			want: []string{"identity.seccomp"}},
		{name: "network attached",
			weaken: func(_ *container.Config, h *container.HostConfig) { h.NetworkMode = "bridge" },
			// The probe target is a listener on this host: with a network
			// the direct connection succeeds as well.
			want: []string{"network.direct_egress", "network.interfaces"}},
		{name: "key-looking environment variable",
			opts: func(o *Options) { o.Env = append(o.Env, "ANTHROPIC_API_KEY=sk-ant-api03-selftestfakekey") },
			want: []string{"credentials.process_environ"}},
	}
	probe := hostListener(t)
	// Some hosts (this CI's, behind a transparent proxy) answer on the
	// metadata address themselves: a container with a network reaches it.
	if imdsFromHost() {
		tests[5].want = []string{"network.direct_egress", "network.imds_v4", "network.interfaces"}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := selfTestEnv(t, tt.opts, tt.weaken)
			info := e.startReady(t, workspace.StartSpec{Token: runtimetest.Token(t), Conversation: "weak"})
			if tt.before != nil {
				if r := e.run(t, info, tt.before...); r.ExitCode != 0 {
					t.Fatalf("%q: exit %d %s", tt.before, r.ExitCode, r.Output)
				}
			}
			rep, r := e.runSelfTest(t, info, "-egress-probe", probe)
			got := slices.Sorted(slices.Values(rep.Failed()))
			if !slices.Equal(got, tt.want) {
				t.Errorf("failed checks %v, want exactly %v; report:\n%s", got, tt.want, r.Output)
			}
			if r.ExitCode != 1 {
				t.Errorf("exit code %d, want 1", r.ExitCode)
			}
			for _, c := range rep.Checks {
				if c.Status == selftest.Fail && c.Meaning == "" {
					t.Errorf("%s fails without saying what it means", c.ID)
				}
			}
			if strings.Contains(r.Output, "sk-ant-api03-selftestfakekey") || strings.Contains(r.Output, "AKIAABCDEFGHIJKLMNOP") {
				t.Errorf("the report shows a secret's value:\n%s", r.Output)
			}
		})
	}
}

// imdsFromHost reports whether this host connects to 169.254.169.254:80.
func imdsFromHost() bool {
	c, err := net.DialTimeout("tcp", "169.254.169.254:80", 2*time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// hostListener listens on a non-loopback address of this host (reachable
// from a container on a bridge network, not from one without a network)
// and returns it as host:port; connections are accepted and closed.
func hostListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(hostAddress(t), "0"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}
