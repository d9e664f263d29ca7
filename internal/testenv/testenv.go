// Package testenv decides what a test does when a real dependency (Redis,
// the Docker engine, a locally built image, an apt package) is missing: skip
// on a developer's machine, fail under CI=true. Tests never silently skip in
// CI.
package testenv

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// InCI reports whether the tests run under CI (CI=true), where a missing
// dependency is a failure, not a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable stops the test because dependency what is missing: t.Fatalf
// under CI, t.Skipf elsewhere.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s unavailable under CI=true: %v", what, err)
	}
	t.Skipf("%s unavailable (set CI=true to make this a failure): %v", what, err)
}

// LookPath returns the path of program or stops the test as Unavailable.
func LookPath(t testing.TB, program string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		Unavailable(t, program, err)
	}
	return p
}

// Docker returns a client for the local Docker engine (API version
// negotiated: the engine here may be older than the client library), or
// stops the test as Unavailable. The client is closed at cleanup.
func Docker(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		Unavailable(t, "docker engine", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		_ = cli.Close()
		Unavailable(t, "docker engine", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// Image checks that a locally built image exists (see `make images`), or
// stops the test as Unavailable.
func Image(t testing.TB, cli *client.Client, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		Unavailable(t, "image "+ref+" (run `make images`)", err)
	}
}

// Labelled lists every container (running or not) that carries label=value.
func Labelled(t testing.TB, cli *client.Client, label, value string) []container.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", label+"="+value))})
	if err != nil {
		t.Fatalf("list containers labelled %s=%s: %v", label, value, err)
	}
	return cs
}

// RemoveLabelled force-removes every container that carries label=value:
// the cleanup of a test that labels what it creates. Containers already
// gone, or being removed by the code under test, are not an error.
func RemoveLabelled(t testing.TB, cli *client.Client, label, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range Labelled(t, cli, label, value) {
		err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
			t.Errorf("cleanup: remove container %s: %v", c.ID, err)
		}
	}
}
