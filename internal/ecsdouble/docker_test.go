package ecsdouble_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/internal/testenv"
)

// standInDefs is the real task definition with the workspace image standing
// in for the proxy sidecar (busybox sleeping, healthy by a busybox probe):
// it exercises the double's container mechanics without the proxy image.
func standInDefs(t *testing.T) []ecsdouble.ContainerDefinition {
	t.Helper()
	defs, err := ecsdouble.LoadContainerDefinitions(map[string]string{
		"agent_image": ecsdouble.AgentTestImage,
		"proxy_image": ecsdouble.AgentTestImage,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range defs {
		if defs[i].Name == "credential-proxy" {
			defs[i].EntryPoint = []string{"/bin/busybox", "sleep", "3600"}
			defs[i].HealthCheck.Command = []string{"CMD", "/bin/busybox", "true"}
			defs[i].StopTimeout = 1 // sleep as PID 1 ignores SIGTERM
		}
	}
	return defs
}

func TestDockerTaskRunsForReal(t *testing.T) {
	cli := testenv.Docker(t)
	testenv.Image(t, cli, ecsdouble.AgentTestImage)
	ctx := testCtx(t)
	d := ecsdouble.Start(t, ecsdouble.Options{Docker: cli, Containers: standInDefs(t)})
	arn := startTask(t, d, "real", "workspaced")
	snap, err := d.WaitStatus(ctx, arn, "RUNNING")
	if err != nil {
		t.Fatal(err)
	}
	if snap.LastStatus != "RUNNING" || snap.IP == "" || len(snap.ContainerIDs) != 2 {
		t.Fatalf("running task: %s ip %q containers %v (%s)", snap.LastStatus, snap.IP, snap.ContainerIDs, snap.StoppedReason)
	}

	// The agent listens on :9000 in the shared namespace, reachable at the
	// task's address. RUNNING means started, not listening (as in ECS).
	if err := waitHealth(ctx, fmt.Sprintf("http://%s:9000/health", snap.IP)); err != nil {
		t.Fatal(err)
	}

	agent, err := cli.ContainerInspect(ctx, snap.ContainerIDs["workspace-agent"])
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := cli.ContainerInspect(ctx, snap.ContainerIDs["credential-proxy"])
	if err != nil {
		t.Fatal(err)
	}
	if got := string(agent.HostConfig.NetworkMode); got != "container:"+proxy.ID {
		t.Errorf("agent network mode %q, want the proxy's namespace", got)
	}
	if proxy.State.Health == nil || proxy.State.Health.Status != "healthy" {
		t.Errorf("agent started before the proxy was healthy: %+v", proxy.State.Health)
	}
	hc := agent.HostConfig
	checks := []struct {
		what string
		ok   bool
	}{
		{"read-only root", hc.ReadonlyRootfs},
		{"user 1000:1000", agent.Config.User == "1000:1000"},
		{"cap drop ALL", slices.Equal(hc.CapDrop, []string{"ALL"})},
		{"cap add CHOWN SETUID SETGID DAC_OVERRIDE", capSet(hc.CapAdd) == "CHOWN DAC_OVERRIDE SETGID SETUID"},
		{"no-new-privileges", slices.Contains(hc.SecurityOpt, "no-new-privileges:true")},
		{"not privileged", !hc.Privileged},
		{"memory 2048 MiB", hc.Memory == 2048<<20},
		{"tmpfs /workspace", strings.Contains(hc.Tmpfs["/workspace"], "size=512m")},
		{"/dev/shm size", hc.ShmSize == 64<<20},
		{"tmpfs /var/tmp noexec", strings.Contains(hc.Tmpfs["/var/tmp"], "noexec")},
		{"nproc ulimit", slices.ContainsFunc(hc.Ulimits, func(u *container.Ulimit) bool { return u.Name == "nproc" && u.Hard > 0 })},
		{"ECS task-arn label", agent.Config.Labels["com.amazonaws.ecs.task-arn"] == arn},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("agent container: %s not applied (host config %+v)", c.what, hc)
		}
	}
	for _, kv := range agent.Config.Env {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "PROXY_") {
			t.Errorf("agent container environment has %s", kv)
		}
	}

	if _, err := ecsClient(d).StopTask(ctx, &awsecs.StopTaskInput{Cluster: aws.String(d.ClusterName), Task: aws.String(arn)}); err != nil {
		t.Fatalf("StopTask: %v", err)
	}
	if _, err := d.WaitStatus(ctx, arn, "STOPPED"); err != nil {
		t.Fatal(err)
	}
	for name, id := range snap.ContainerIDs {
		if _, err := cli.ContainerInspect(ctx, id); !client.IsErrNotFound(err) {
			t.Errorf("container %s not removed after STOPPED: %v", name, err)
		}
	}
	var statuses []string
	var last int64
	for _, ev := range d.Events() {
		if ev.TaskArn != arn {
			continue
		}
		if ev.Version <= last {
			t.Errorf("event version %d after %d", ev.Version, last)
		}
		last = ev.Version
		if len(statuses) == 0 || statuses[len(statuses)-1] != ev.LastStatus {
			statuses = append(statuses, ev.LastStatus)
		}
	}
	if want := "PROVISIONING PENDING RUNNING STOPPING DEPROVISIONING STOPPED"; strings.Join(statuses, " ") != want {
		t.Errorf("statuses %v, want %s", statuses, want)
	}
}

// capSet normalises capability names as Docker reports them (CAP_ prefix,
// any order).
func capSet(caps []string) string {
	var out []string
	for _, c := range caps {
		out = append(out, strings.TrimPrefix(strings.ToUpper(c), "CAP_"))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// waitHealth polls url until it answers 200 or ctx ends: readiness of a
// process that just started has no event to wait on.
func waitHealth(ctx context.Context, url string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", resp.Status, body)
		}
		last = err
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("GET %s: %v (last: %v)", url, ctx.Err(), last)
		}
	}
}

func TestDockerEssentialContainerExit(t *testing.T) {
	cli := testenv.Docker(t)
	testenv.Image(t, cli, ecsdouble.AgentTestImage)
	ctx := testCtx(t)
	d := ecsdouble.Start(t, ecsdouble.Options{Docker: cli, Containers: standInDefs(t)})
	arn := startTask(t, d, "exit", "workspaced")
	if snap, err := d.WaitStatus(ctx, arn, "RUNNING"); err != nil || snap.LastStatus != "RUNNING" {
		t.Fatalf("wait RUNNING: %+v %v", snap, err)
	}
	if err := d.ExitContainer(arn, "workspace-agent", 0); err != nil {
		t.Fatal(err)
	}
	snap, err := d.WaitStatus(ctx, arn, "STOPPED")
	if err != nil {
		t.Fatal(err)
	}
	if snap.StopCode != "EssentialContainerExited" {
		t.Errorf("stop code %q, want EssentialContainerExited", snap.StopCode)
	}
	out, err := ecsClient(d).DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String(d.ClusterName), Tasks: []string{arn}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range out.Tasks[0].Containers {
		if aws.ToString(c.Name) == "workspace-agent" && (c.ExitCode == nil || *c.ExitCode != 137) {
			t.Errorf("killed agent exit code %v, want 137", c.ExitCode)
		}
	}
}

func TestDockerTaskFailsToStart(t *testing.T) {
	cli := testenv.Docker(t)
	ctx := testCtx(t)
	defs := standInDefs(t)
	for i := range defs {
		defs[i].Image = "workspaced/ecsdouble-missing:none"
	}
	d := ecsdouble.Start(t, ecsdouble.Options{Docker: cli, Containers: defs})
	arn := startTask(t, d, "missing", "workspaced")
	snap, err := d.WaitStatus(ctx, arn, "STOPPED")
	if err != nil {
		t.Fatal(err)
	}
	if snap.StopCode != "TaskFailedToStart" || !strings.Contains(snap.StoppedReason, "CannotCreateContainerError") {
		t.Errorf("stop code %q reason %q, want TaskFailedToStart / CannotCreateContainerError", snap.StopCode, snap.StoppedReason)
	}
	for _, ev := range d.Events() {
		if ev.LastStatus == "RUNNING" {
			t.Errorf("a task that failed to start reported RUNNING")
		}
	}
}

// ExtraHosts reach the task's /etc/hosts (shared by the containers of its
// namespace) and Binds mount host files into the named container only.
func TestDockerExtraHostsAndBinds(t *testing.T) {
	cli := testenv.Docker(t)
	testenv.Image(t, cli, ecsdouble.AgentTestImage)
	ctx := testCtx(t)
	dir := t.TempDir()
	file := dir + "/ca.pem"
	if err := os.WriteFile(file, []byte("bound-file-content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := ecsdouble.Start(t, ecsdouble.Options{
		Docker:     cli,
		Containers: standInDefs(t),
		ExtraHosts: []string{"stand-in.example.com:192.0.2.10"},
		Binds:      map[string][]string{"workspace-agent": {file + ":/etc/e2e/ca.pem:ro"}},
	})
	arn := startTask(t, d, "hosts", "workspaced")
	snap, err := d.WaitStatus(ctx, arn, "RUNNING")
	if err != nil || snap.LastStatus != "RUNNING" {
		t.Fatalf("wait RUNNING: %+v %v", snap, err)
	}
	out := execIn(ctx, t, cli, snap.ContainerIDs["workspace-agent"], "/bin/sh", "-c", "cat /etc/hosts /etc/e2e/ca.pem")
	if !strings.Contains(out, "192.0.2.10\tstand-in.example.com") || !strings.Contains(out, "bound-file-content") {
		t.Errorf("agent sees:\n%s", out)
	}
	proxy, err := cli.ContainerInspect(ctx, snap.ContainerIDs["credential-proxy"])
	if err != nil {
		t.Fatal(err)
	}
	if len(proxy.HostConfig.Binds) != 0 {
		t.Errorf("proxy container got binds %v", proxy.HostConfig.Binds)
	}
}

// execIn runs a command in a container and returns its output.
func execIn(ctx context.Context, t *testing.T, cli *client.Client, id string, cmd ...string) string {
	t.Helper()
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	var stdout, stderr strings.Builder
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		t.Fatal(err)
	}
	return stdout.String() + stderr.String()
}
