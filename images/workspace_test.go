package images_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/workspaced/workspaced/agent/api"
	agentclient "github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/deploy/seccomp"
	"github.com/workspaced/workspaced/internal/testenv"
)

const testImage = "workspaced/workspace:test"

// workspace is a hardened workspace container for one test.
type workspace struct {
	id      string
	sockDir string
	client  *agentclient.Client
	proxy   *proxyStub
}

// proxyStub stands in for the host-side credential proxy: an HTTP server
// on proxy.sock answering every request with its method and URL.
type proxyStub struct{ requests chan string }

func startProxyStub(t *testing.T, dir string) *proxyStub {
	t.Helper()
	path := filepath.Join(dir, "proxy.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	p := &proxyStub{requests: make(chan string, 16)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line := r.Method + " " + r.URL.String()
		select {
		case p.requests <- line:
		default:
		}
		fmt.Fprintf(w, "proxied %s", line)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

func startWorkspace(t *testing.T, cli *client.Client, mod func(*container.Config, *container.HostConfig)) *workspace {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sockDir, err := os.MkdirTemp("", "wsimg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	// The agent (uid 1000) creates its socket here; root on the host can
	// still reach it.
	if err := os.Chown(sockDir, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sockDir, 0o770); err != nil {
		t.Fatal(err)
	}
	proxy := startProxyStub(t, sockDir)
	var profile bytes.Buffer
	if err := json.Compact(&profile, seccomp.Profile()); err != nil {
		t.Fatal(err)
	}
	owned := ",uid=1000,gid=1000,mode=0755"
	pids := int64(256)
	cfg := &container.Config{
		Image: testImage,
		User:  "1000:1000",
		Env: []string{
			"WORKSPACE_LISTEN_MODE=uds",
			"WORKSPACE_SOCKET_PATH=/var/run/ws/agent.sock",
			"WORKSPACE_PROXY_SOCKET=/var/run/ws/proxy.sock",
			"WORKSPACE_KILL_GRACE=2s",
			"AWS_SECRET_ACCESS_KEY=must-not-reach-a-run",
		},
		Labels: map[string]string{"workspaced.test": "images"},
	}
	host := &container.HostConfig{
		NetworkMode:    "none",
		CapDrop:        []string{"ALL"},
		CapAdd:         []string{"CHOWN", "SETUID", "SETGID", "DAC_OVERRIDE"},
		ReadonlyRootfs: true,
		SecurityOpt:    []string{"no-new-privileges:true", "seccomp=" + profile.String()},
		IpcMode:        container.IPCModePrivate,
		Tmpfs: map[string]string{
			"/tmp":                 "rw,nosuid,nodev,exec,size=64m" + owned,
			"/var/tmp":             "rw,nosuid,nodev,noexec,size=16m" + owned,
			"/run":                 "rw,nosuid,nodev,noexec,size=16m,mode=0755",
			"/home/appuser":        "rw,nosuid,nodev,noexec,size=16m" + owned,
			"/home/appuser/.cache": "rw,nosuid,nodev,noexec,size=16m" + owned,
			"/workspace":           "rw,nosuid,nodev,exec,size=64m" + owned,
		},
		Mounts:    []mount.Mount{{Type: mount.TypeBind, Source: sockDir, Target: "/var/run/ws"}},
		Resources: container.Resources{PidsLimit: &pids, Memory: 512 << 20},
	}
	if mod != nil {
		mod(cfg, host)
	}
	created, err := cli.ContainerCreate(ctx, cfg, host, nil, nil, "")
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = cli.ContainerRemove(ctx, created.ID, container.RemoveOptions{Force: true})
	})
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start container: %v", err)
	}
	// Logs are read from the start: nothing logged before this is missed.
	listening, ended := followLogs(t, cli, created.ID)
	select {
	case <-listening:
	case <-ended:
		t.Fatal("the container's log ended before the agent listened")
	case <-ctx.Done():
		t.Fatal("the agent in the container never listened")
	}
	rt := agentclient.UnixTransport(filepath.Join(sockDir, "agent.sock"))
	t.Cleanup(rt.(interface{ CloseIdleConnections() }).CloseIdleConnections)
	return &workspace{id: created.ID, sockDir: sockDir, client: agentclient.New(rt), proxy: proxy}
}

// followLogs streams the container's logs into the test log. listening is
// closed when the agent logs "listening", ended when the log ends.
func followLogs(t *testing.T, cli *client.Client, id string) (listening, ended <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		cancel()
		t.Fatalf("container logs: %v", err)
	}
	pr, pw := io.Pipe()
	listen := make(chan struct{})
	done := make(chan struct{})
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, rc)
		pw.CloseWithError(err)
	}()
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		seen := false
		for sc.Scan() {
			t.Logf("container: %s", sc.Text())
			var rec struct{ Msg string }
			if !seen && json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "listening" {
				seen = true
				close(listen)
			}
		}
	}()
	t.Cleanup(func() { cancel(); rc.Close(); <-done })
	return listen, done
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func run(t *testing.T, ws *workspace, req api.ExecuteRequest) ([]string, api.Done) {
	t.Helper()
	st, err := ws.client.Execute(testCtx(t), req)
	if err != nil {
		t.Fatalf("execute: %v", err)
	}
	defer st.Close()
	var lines []string
	for {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		lines = append(lines, ev.Event+" "+ev.Data)
	}
	if st.Done() == nil {
		t.Fatalf("no done event: %q", lines)
	}
	return lines, *st.Done()
}

func TestWorkspaceImage(t *testing.T) {
	cli := testenv.Docker(t)
	testenv.Image(t, cli, testImage)
	ws := startWorkspace(t, cli, nil)
	ctx := testCtx(t)

	t.Run("health", func(t *testing.T) {
		h, err := ws.client.Health(ctx)
		if err != nil || h.Status != "ok" || h.Busy {
			t.Fatalf("health = %+v, %v", h, err)
		}
	})
	t.Run("claude run reaches the proxy, not the agent's env", func(t *testing.T) {
		lines, done := run(t, ws, api.ExecuteRequest{Prompt: "hi http:http://upstream.test/ping env:"})
		all := strings.Join(lines, "\n")
		if done.ExitCode != 0 {
			t.Fatalf("done = %+v\n%s", done, all)
		}
		if !strings.Contains(all, "proxied GET http://upstream.test/ping") {
			t.Errorf("the run's HTTP request did not reach the proxy through 127.0.0.1:8080:\n%s", all)
		}
		if strings.Contains(all, "must-not-reach-a-run") {
			t.Errorf("the agent's environment leaked into the run:\n%s", all)
		}
	})
	t.Run("runs as appuser in /workspace", func(t *testing.T) {
		lines, done := run(t, ws, api.ExecuteRequest{Kind: api.KindCommand, Argv: []string{"sh", "-c", "id -u; id -g; pwd; touch /workspace/ok && echo writable; touch /etc/x 2>/dev/null || echo readonly"}})
		want := []string{"stdout 1000", "stdout 1000", "stdout /workspace", "stdout writable", "stdout readonly"}
		if done.ExitCode != 0 || strings.Join(lines[:len(lines)-1], "|") != strings.Join(want, "|") {
			t.Errorf("got %q (%+v), want %q", lines, done, want)
		}
	})
	t.Run("nothing outlives a run", func(t *testing.T) {
		// A process that leaves the run's group (setsid) is killed too:
		// the agent is the container's PID 1.
		_, done := run(t, ws, api.ExecuteRequest{Kind: api.KindCommand, Argv: []string{"sh", "-c", "setsid sleep 600 </dev/null >/dev/null 2>&1 & sleep 600 & echo started; wait"}, TimeoutS: 2})
		if done.Reason != "timeout" {
			t.Fatalf("done = %+v", done)
		}
		lines, _ := run(t, ws, api.ExecuteRequest{Kind: api.KindCommand, Argv: []string{"ps", "-o", "pid,stat,args"}})
		t.Logf("processes after the run: %q", lines)
		for _, l := range lines {
			if strings.Contains(l, "sleep") || strings.Contains(l, " Z ") {
				t.Errorf("a process outlived its run: %q", lines)
				break
			}
		}
	})
	t.Run("files round trip in the tmpfs", func(t *testing.T) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		_ = tw.WriteHeader(&tar.Header{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o755})
		_ = tw.WriteHeader(&tar.Header{Name: "dir/run.sh", Typeflag: tar.TypeReg, Mode: 0o755, Size: 20})
		_, _ = io.WriteString(tw, "#!/bin/sh\necho works")
		_ = tw.Close()
		if err := ws.client.PutFiles(ctx, &buf); err != nil {
			t.Fatal(err)
		}
		lines, done := run(t, ws, api.ExecuteRequest{Kind: api.KindCommand, Argv: []string{"./dir/run.sh"}})
		if done.ExitCode != 0 || len(lines) != 2 || lines[0] != "stdout works" {
			t.Errorf("run restored script: %q %+v", lines, done)
		}
	})
	t.Run("SIGTERM stops the agent with exit 0", func(t *testing.T) {
		timeout := 10
		if err := cli.ContainerStop(ctx, ws.id, container.StopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
		info, err := cli.ContainerInspect(ctx, ws.id)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.ExitCode != 0 || info.State.OOMKilled {
			t.Errorf("agent exit code = %d, want 0", info.State.ExitCode)
		}
	})
}

// TestProductionEntrypoint runs agent/entrypoint.sh (the production
// image's entrypoint) in the test image with ECS-style tmpfs mounts: no
// uid/gid options, so the mounts are root's with the kernel's mode 1777.
func TestProductionEntrypoint(t *testing.T) {
	cli := testenv.Docker(t)
	testenv.Image(t, cli, testImage)
	script, err := filepath.Abs("../agent/entrypoint.sh")
	if err != nil {
		t.Fatal(err)
	}
	ecsStyle := func(cfg *container.Config, host *container.HostConfig) {
		cfg.Entrypoint = []string{"/bin/sh", "/entrypoint.sh"}
		for path := range host.Tmpfs {
			host.Tmpfs[path] = "rw,nosuid,size=16m"
		}
		host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeBind, Source: script, Target: "/entrypoint.sh", ReadOnly: true})
	}
	ws := startWorkspace(t, cli, ecsStyle)
	lines, done := run(t, ws, api.ExecuteRequest{Kind: api.KindCommand, Argv: []string{"sh", "-c",
		"touch /workspace/f && ls -ld /workspace && test -d /home/appuser/.claude && echo home-ok"}})
	all := strings.Join(lines, "\n")
	if done.ExitCode != 0 || !strings.Contains(all, "drwxrwxrwt") || !strings.Contains(all, "home-ok") {
		t.Errorf("run in ECS-style tmpfs: %+v\n%s", done, all)
	}
	lines, _ = run(t, ws, api.ExecuteRequest{Kind: api.KindCommand, Argv: []string{"ps", "-o", "pid,args"}})
	if len(lines) < 2 || !strings.Contains(lines[1], "1 /usr/local/bin/workspace-agent") {
		t.Errorf("the agent is not PID 1 after the entrypoint: %q", lines)
	}
}
