package ecs_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus/bustest"
	"github.com/workspaced/workspaced/internal/awstest"
	"github.com/workspaced/workspaced/internal/ecsdouble"
	"github.com/workspaced/workspaced/runtime/ecs"
	"github.com/workspaced/workspaced/workspace"
)

// TestTaskEventsContract starts a workspace through the runtime on a double
// that publishes its task events to kumo's EventBridge, routed by the
// Terraform rule to an SQS queue — the path the state subscriber consumes —
// and checks what the subscriber relies on: the envelope's taskArn is
// Info.ID, the RUNNING event's address gives Info.Endpoint, versions only
// grow, and the STOPPED event still names the group (tags are gone).
func TestTaskEventsContract(t *testing.T) {
	emu := bustest.StartEmulator(t)
	awstest.EventBridgeDelivery(t, emu.URL)
	ctx := testCtx(t)
	eb := eventbridge.NewFromConfig(emu.Config, func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(emu.URL) })
	q, err := emu.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(bustest.UniquePrefix(t) + events.TopicTaskEvents)})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	queueURL := aws.ToString(q.QueueUrl)
	d := ecsdouble.Start(t, ecsdouble.Options{Sink: ecsdouble.EventBridgeSink{Client: eb}})
	awstest.TaskEventRule(t, eb, emu.SQS, d.ClusterArn, ecs.DefaultStartedBy, queueURL)
	f := &fixture{d: d}
	f.rt, f.reg = newRuntime(t, d)

	started, err := f.rt.Start(ctx, workspace.StartSpec{Token: token(t), Conversation: "conv-ev", Tenant: "acme"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if _, err := d.WaitStatus(ctx, started.ID, "RUNNING"); err != nil {
		t.Fatal(err)
	}
	running, err := f.rt.Inspect(ctx, started.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.rt.Stop(ctx, started.ID, "idle_ttl"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitStatus(ctx, started.ID, "STOPPED"); err != nil {
		t.Fatal(err)
	}
	emitted := len(d.Events())
	got := awstest.ReceiveTaskEvents(ctx, t, emu.SQS, queueURL, func(r []awstest.Received) bool { return len(r) >= emitted })

	var sawRunning, sawStopped bool
	var maxVersion int64
	for _, r := range got {
		det := r.Event.Detail
		if det.TaskArn != started.ID {
			t.Errorf("event taskArn %s, want Info.ID %s", det.TaskArn, started.ID)
		}
		if det.StartedBy != ecs.DefaultStartedBy || det.Group != ecs.GroupConversationPrefix+"conv-ev" {
			t.Errorf("event startedBy %q group %q", det.StartedBy, det.Group)
		}
		maxVersion = max(maxVersion, det.Version)
		switch workspace.Status(det.LastStatus) {
		case workspace.StatusRunning:
			if det.DesiredStatus == "RUNNING" {
				sawRunning = true
				if ep := "http://" + det.PrivateIPv4() + ":9000"; ep != running.Endpoint {
					t.Errorf("RUNNING event gives endpoint %s, Inspect %s", ep, running.Endpoint)
				}
			}
		case workspace.StatusStopped:
			sawStopped = true
			if det.StoppedReason != "idle_ttl" || det.StopCode != "UserInitiated" {
				t.Errorf("STOPPED event: code %q reason %q", det.StopCode, det.StoppedReason)
			}
		}
	}
	if !sawRunning || !sawStopped {
		t.Errorf("queue lacks the RUNNING (%v) or STOPPED (%v) event", sawRunning, sawStopped)
	}
	if last := d.Events()[emitted-1]; maxVersion != last.Version {
		t.Errorf("highest version on the queue %d, want the last emitted %d", maxVersion, last.Version)
	}
}
