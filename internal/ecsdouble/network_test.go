package ecsdouble_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/internal/testenv"
)

// testNetwork creates an internal Docker network (clean-up registered
// first, so it runs after the double's containers are gone).
func testNetwork(t *testing.T, cli *client.Client) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "ecsdouble-sg-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cli.NetworkRemove(ctx, name); err != nil && !client.IsErrNotFound(err) {
			t.Errorf("cleanup: remove network %s: %v", name, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Internal: true,
		Labels: map[string]string{ecsdouble.LabelCluster: name}}); err != nil {
		t.Fatalf("create network: %v", err)
	}
	return name
}

// Security groups are networks: a task's shared namespace joins exactly
// the networks of the groups RunTask names (its address is on the first),
// and a group the double does not know fails the task at start.
func TestDockerSecurityGroupsAreNetworks(t *testing.T) {
	cli := testenv.Docker(t)
	testenv.Image(t, cli, ecsdouble.AgentTestImage)
	a, b, other := testNetwork(t, cli), testNetwork(t, cli), testNetwork(t, cli)
	ctx := testCtx(t)
	d := ecsdouble.Start(t, ecsdouble.Options{Docker: cli, Containers: standInDefs(t),
		SecurityGroups: map[string]string{"sg-0aaa": a, "sg-0bbb": b, "sg-0ccc": other}})

	in := runTask(d, "two-groups", "workspaced")
	in.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups = []string{"sg-0aaa", "sg-0bbb"}
	out, err := ecsClient(d).RunTask(ctx, in)
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("RunTask: %v %+v", err, out)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	snap, err := d.WaitStatus(ctx, arn, "RUNNING")
	if err != nil {
		t.Fatal(err)
	}
	for name, id := range snap.ContainerIDs {
		info, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if name != "credential-proxy" { // joins the holder's namespace
			continue
		}
		var nets []string
		for n := range info.NetworkSettings.Networks {
			nets = append(nets, n)
		}
		slices.Sort(nets)
		want := []string{a, b}
		slices.Sort(want)
		if !slices.Equal(nets, want) {
			t.Errorf("namespace on networks %v, want exactly %v", nets, want)
		}
		if ip := info.NetworkSettings.Networks[a].IPAddress; ip == "" || ip != snap.IP {
			t.Errorf("task IP %q, want its address on the first group's network (%q)", snap.IP, ip)
		}
	}

	in = runTask(d, "unknown-group", "workspaced")
	in.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups = []string{"sg-0ddd"}
	out, err = ecsClient(d).RunTask(ctx, in)
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("RunTask: %v %+v", err, out)
	}
	snap, err = d.WaitStatus(ctx, aws.ToString(out.Tasks[0].TaskArn), "STOPPED")
	if err != nil {
		t.Fatal(err)
	}
	if snap.StopCode != "TaskFailedToStart" {
		t.Errorf("a task in an unknown group: stop code %q (%s), want TaskFailedToStart", snap.StopCode, snap.StoppedReason)
	}
}
