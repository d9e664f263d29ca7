package ecsdouble_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/workspaced/workspaced/internal/ecsdouble"
)

// awsSamplesDir holds AWS's documented "ECS Task State Change" samples,
// verbatim (its README names the pages).
const awsSamplesDir = "../../events/testdata/aws"

// keyPaths adds to out the key path of every member of v: "detail.version",
// "detail.containers[].networkInterfaces[].privateIpv4Address". The
// name/value pairs of an attachment's details (the ENI's address is one)
// also count by name: "detail.attachments[].details[name=privateIPv4Address]".
func keyPaths(prefix string, v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			out[p] = true
			keyPaths(p, c, out)
		}
	case []any:
		for _, c := range x {
			if m, ok := c.(map[string]any); ok && strings.HasSuffix(prefix, ".details") {
				if n, ok := m["name"].(string); ok {
					out[prefix+"[name="+n+"]"] = true
				}
			}
			keyPaths(prefix+"[]", c, out)
		}
	}
}

func envelopePaths(t *testing.T, b []byte, out map[string]bool) {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	keyPaths("", v, out)
}

// Key paths of AWS's samples the double does not produce, and why.
var notInDouble = map[string]string{
	"detail.platformVersion":          "Fargate only (RunTask: platformVersion is for Fargate); the double runs EC2 tasks",
	"detail.containers[].imageDigest": "returned only for images hosted in Amazon ECR (the guide's note on the sample); the double runs local images",
	"detail.containers[].runtimeId":   "the Docker container ID: the double sets it in Docker mode only, and this test runs the simulated double",
}

// Key paths of the double's events that AWS's samples (both of a RUNNING
// task) do not show, each a member of the Task, Container or TaskOverride
// shape of the ECS API reference (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html),
// which the guide says the detail resembles.
var notInSamples = map[string]string{
	"detail.stopCode":                                           "Task.stopCode; set once the task is asked to stop (the Fargate Spot snippet of the guide shows it in an event)",
	"detail.stoppedReason":                                      "Task.stoppedReason; likewise",
	"detail.stoppingAt":                                         "Task.stoppingAt; a stopping task",
	"detail.stoppedAt":                                          "Task.stoppedAt; a stopped task",
	"detail.executionStoppedAt":                                 "Task.executionStoppedAt; a stopped task",
	"detail.enableExecuteCommand":                               "Task.enableExecuteCommand (ECS Exec examples of the guide show it in DescribeTasks)",
	"detail.containers[].memory":                                "Container.memory; the definition sets hard limits",
	"detail.containers[].memoryReservation":                     "Container.memoryReservation",
	"detail.overrides.containerOverrides[].environment":         "TaskOverride: the runtime's override of the proxy's environment",
	"detail.overrides.containerOverrides[].environment[].name":  "TaskOverride",
	"detail.overrides.containerOverrides[].environment[].value": "TaskOverride",
	"detail.attachments[].details[name=privateDnsName]":         "the ENI's DNS name; the AWS CLI describe-tasks examples of awsvpc tasks list it between macAddress and privateIPv4Address",
}

// mustCarry are the members the runtime and the state subscriber read from
// events (the list): the double's events must carry each.
var mustCarry = []string{
	"version", "id", "detail-type", "source", "account", "time", "region", "resources",
	"detail.taskArn", "detail.clusterArn", "detail.taskDefinitionArn",
	"detail.attachments[].type", "detail.attachments[].details[name=privateIPv4Address]",
	"detail.containers[].name", "detail.containers[].lastStatus", "detail.containers[].exitCode",
	"detail.containers[].networkInterfaces[].privateIpv4Address",
	"detail.lastStatus", "detail.desiredStatus", "detail.stopCode", "detail.stoppedReason",
	"detail.startedBy", "detail.group", "detail.version",
	"detail.createdAt", "detail.startedAt", "detail.stoppedAt", "detail.updatedAt",
}

// TestEventFieldSetMatchesAWSSamples compares the key paths of AWS's
// documented task state change events with those of the double's events
// over a task's whole life (RunTask with overrides → RUNNING → an essential
// container exits → STOPPED). A path on one side only fails the test unless
// notInDouble or notInSamples explains it; health never appears in events.
func TestEventFieldSetMatchesAWSSamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(awsSamplesDir, "*.json"))
	if err != nil || len(files) < 2 {
		t.Fatalf("AWS samples in %s: %v %v", awsSamplesDir, files, err)
	}
	aws_ := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		envelopePaths(t, b, aws_)
	}

	d := ecsdouble.Start(t, ecsdouble.Options{})
	ctx := testCtx(t)
	in := runTask(d, "shape", "workspaced")
	in.Overrides = &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{
		Name:        aws.String("credential-proxy"),
		Environment: []ecstypes.KeyValuePair{{Name: aws.String("PROXY_ADMIN_TOKEN"), Value: aws.String("t")}},
	}}}
	out, err := ecsClient(d).RunTask(ctx, in)
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("RunTask: %v %+v", err, out)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	if _, err := d.WaitStatus(ctx, arn, "RUNNING"); err != nil {
		t.Fatal(err)
	}
	if err := d.ExitContainer(arn, "workspace-agent", 3); err != nil {
		t.Fatal(err)
	}
	if snap, err := d.WaitStatus(ctx, arn, "STOPPED"); err != nil || snap.StopCode != "EssentialContainerExited" {
		t.Fatalf("after the agent exited: %+v %v", snap, err)
	}
	double := map[string]bool{}
	for _, ev := range d.Events() {
		envelopePaths(t, ev.Envelope(), double)
	}

	for p := range aws_ {
		if !double[p] && notInDouble[p] == "" {
			t.Errorf("AWS's sample events carry %s; the double's never do", p)
		}
	}
	for p := range double {
		if !aws_[p] && notInSamples[p] == "" {
			t.Errorf("the double's events carry %s; AWS's samples do not, and nothing here says why", p)
		}
		if strings.HasSuffix(p, "healthStatus") {
			t.Errorf("the double's events carry %s; ECS task events carry no health", p)
		}
	}
	for _, p := range mustCarry {
		if !double[p] {
			t.Errorf("the double's events never carry %s", p)
		}
	}
	// An explanation for a path that no longer differs is stale.
	for p := range notInDouble {
		if double[p] || !aws_[p] {
			t.Errorf("notInDouble explains %s, which is not a difference", p)
		}
	}
	for p := range notInSamples {
		if aws_[p] || !double[p] {
			t.Errorf("notInSamples explains %s, which is not a difference", p)
		}
	}
	if t.Failed() {
		keys := func(m map[string]bool) []string {
			var s []string
			for k := range m {
				s = append(s, k)
			}
			slices.Sort(s)
			return s
		}
		t.Logf("AWS samples: %v", keys(aws_))
		t.Logf("double: %v", keys(double))
	}
}
