package ecs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/workspaced/workspaced/agent/api"
	agentclient "github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/deploy/seccomp"
	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/runtime/ecs"
	"github.com/workspaced/workspaced/selftest"
	"github.com/workspaced/workspaced/workspace"
)

// envOr returns the environment variable name, or def when it is unset.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// internalNetwork creates a Docker network with no route out, standing in
// for the workspace security group (egress only to the proxy's
// destinations, none of which the self-test needs) and the DNS firewall.
// It is removed at cleanup, after the double's containers (registered
// first, so it runs last).
func internalNetwork(t *testing.T, cli *client.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := "wsd-selftest-" + token(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cli.NetworkRemove(ctx, name); err != nil && !client.IsErrNotFound(err) {
			t.Errorf("cleanup: remove network %s: %v", name, err)
		}
	})
	if _, err := cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Internal: true,
		Labels: map[string]string{ecsdouble.LabelCluster: name}}); err != nil {
		t.Fatalf("create network: %v", err)
	}
	return name
}

// TestSelfTestInARealTask runs workspace-selftest in workspace tasks the
// double runs on Docker from the Terraform task definition: with the AMI's
// daemon default (the workspace seccomp profile) every check passes or
// does not apply; on a daemon without it exactly identity.seccomp fails.
func TestSelfTestInARealTask(t *testing.T) {
	t.Parallel()
	var profile bytes.Buffer
	if err := json.Compact(&profile, seccomp.Profile()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		daemon []string
		want   []string
	}{
		{name: "AMI daemon defaults", daemon: []string{"seccomp=" + profile.String()}},
		{name: "daemon without the workspace seccomp profile", want: []string{"identity.seccomp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cli := testenv.Docker(t)
			agentImage := envOr("WORKSPACE_TEST_IMAGE", ecsdouble.AgentTestImage)
			proxyImage := envOr("PROXY_TEST_IMAGE", ecsdouble.ProxyTestImage)
			testenv.Image(t, cli, agentImage)
			testenv.Image(t, cli, proxyImage)
			net := internalNetwork(t, cli)
			d := ecsdouble.Start(t, ecsdouble.Options{Docker: cli, Network: net, DaemonSecurityOptions: tt.daemon,
				TemplateVars: map[string]string{"agent_image": agentImage, "proxy_image": proxyImage}})
			rt, _ := newRuntime(t, d)
			ctx := testCtx(t)
			started, err := rt.Start(ctx, workspace.StartSpec{Token: token(t), Conversation: "selftest", Tenant: "acme"})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			info, err := waitReady(ctx, d, rt, started.ID)
			if err != nil {
				t.Fatal(err)
			}
			// This kernel has no AppArmor: the profile the task definition
			// names cannot apply, so the test makes it optional.
			out, code := runCommand(ctx, t, rt, info, selftest.Binary, "-apparmor=")
			rep, err := selftest.Parse(out)
			if err != nil {
				t.Fatalf("parse report: %v; output:\n%s", err, out)
			}
			t.Logf("report:\n%s", out)
			if got := rep.Failed(); !slices.Equal(got, tt.want) {
				t.Errorf("failed checks %v, want %v", got, tt.want)
			}
			if wantCode := min(len(tt.want), 1); code != wantCode {
				t.Errorf("exit code %d, want %d", code, wantCode)
			}
			if rep.Runtime != selftest.RuntimeECS {
				t.Errorf("runtime %q, want ecs", rep.Runtime)
			}
			if rep.Limits.NprocSoft != "4096" || rep.Limits.MemoryMax != "2147483648" {
				t.Errorf("limits %+v, want nproc 4096 and 2 GiB from the task definition", rep.Limits)
			}
			for id, want := range map[string]selftest.Status{
				"network.proxy_denies": selftest.Pass, // the sidecar answers on 127.0.0.1:8080
				"network.dns_firewall": selftest.Pass,
				"network.interfaces":   selftest.Pass,
			} {
				if c, _ := rep.Find(id); c.Status != want {
					t.Errorf("%s = %s (%s), want %s", id, c.Status, c.Observed, want)
				}
			}
		})
	}
}

// runCommand runs argv in the task through the agent (the runtime's
// transport to http://<task ip>:9000) and returns its stdout and exit code.
func runCommand(ctx context.Context, t *testing.T, rt *ecs.Runtime, info workspace.Info, argv ...string) ([]byte, int) {
	t.Helper()
	tr, err := rt.Transport(info.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	st, err := agentclient.New(tr).Execute(ctx, api.ExecuteRequest{Kind: api.KindCommand, Argv: argv, TimeoutS: 90})
	if err != nil {
		t.Fatalf("execute %q: %v", argv, err)
	}
	defer st.Close()
	var out strings.Builder
	for {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("execute %q: %v", argv, err)
		}
		switch ev.Event {
		case api.EventStdout, api.EventStderr:
			out.WriteString(ev.Data + "\n")
		case api.EventStdoutPart, api.EventStderrPart:
			out.WriteString(ev.Data)
		}
	}
	if st.Done() == nil {
		t.Fatalf("execute %q: no done event:\n%s", argv, out.String())
	}
	return []byte(out.String()), st.Done().ExitCode
}
