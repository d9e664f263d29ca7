package ecsdouble_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus/bustest"
	"github.com/workspaced/workspaced/internal/awstest"
	"github.com/workspaced/workspaced/internal/ecsdouble"
)

// TestEventBridgeToSQS sends the double's task events the way ECS does —
// PutEvents (source aws.ecs) on kumo's EventBridge — with the rule rendered
// from the Terraform pattern targeting an SQS queue. This cluster's events
// land in the queue as raw envelopes; another cluster's, or another
// startedBy's, do not.
func TestEventBridgeToSQS(t *testing.T) {
	emu := bustest.StartEmulator(t)
	awstest.EventBridgeDelivery(t, emu.URL)
	ctx := testCtx(t)
	eb := eventbridge.NewFromConfig(emu.Config, func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(emu.URL) })
	sq := emu.SQS
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(bustest.UniquePrefix(t) + events.TopicTaskEvents)})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	queueURL := aws.ToString(q.QueueUrl)
	sink := ecsdouble.EventBridgeSink{Client: eb}

	d := ecsdouble.Start(t, ecsdouble.Options{Sink: sink})
	other := ecsdouble.Start(t, ecsdouble.Options{Sink: sink})
	rule := awstest.TaskEventRule(t, eb, sq, d.ClusterArn, "workspaced", queueURL)

	ours := startTask(t, d, "ours", "workspaced")
	foreignStarter := startTask(t, d, "foreign", "someone-else")
	otherCluster := startTask(t, other, "ours", "workspaced")
	for _, x := range []struct {
		d   *ecsdouble.Double
		arn string
	}{{d, ours}, {d, foreignStarter}, {other, otherCluster}} {
		if _, err := x.d.WaitStatus(ctx, x.arn, "RUNNING"); err != nil {
			t.Fatal(err)
		}
		if _, err := ecsClient(x.d).StopTask(ctx, &awsecs.StopTaskInput{Cluster: aws.String(x.d.ClusterName), Task: aws.String(x.arn), Reason: aws.String("test")}); err != nil {
			t.Fatalf("StopTask: %v", err)
		}
		if _, err := x.d.WaitStatus(ctx, x.arn, "STOPPED"); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []*ecsdouble.Double{d, other} {
		if err := x.WaitDelivered(ctx, len(x.Events())); err != nil {
			t.Fatal(err)
		}
		if errs := x.DeliveryErrors(); len(errs) > 0 {
			t.Fatalf("PutEvents failed: %v", errs)
		}
	}
	var want []ecsdouble.Event
	for _, ev := range d.Events() {
		if ev.TaskArn == ours {
			want = append(want, ev)
		}
	}

	// Matching happens inside PutEvents: the rule's record is complete.
	matched := awstest.DeliveredEvents(t, emu.URL, rule)
	if len(matched) != len(want) {
		t.Errorf("rule matched %d events, want the %d of task %s", len(matched), len(want), ours)
	}
	for _, m := range matched {
		if !strings.Contains(m.Detail, ours) || m.Source != "aws.ecs" {
			t.Errorf("rule matched a foreign event: %s %s", m.Source, m.Detail)
		}
	}

	got := awstest.ReceiveTaskEvents(ctx, t, sq, queueURL, func(r []awstest.Received) bool { return len(r) >= len(want) })
	versions := map[int64]events.TaskStateChange{}
	for _, r := range got {
		e := r.Event
		if e.Detail.TaskArn != ours || e.Detail.ClusterArn != d.ClusterArn || e.Source != events.SourceECS || e.Version != "0" {
			t.Errorf("queue holds a foreign or malformed event: %s", r.Body)
		}
		if e.Detail.StartedBy != "workspaced" || e.Detail.Group != "conversation:c1" || e.Detail.UpdatedAt == nil {
			t.Errorf("event detail lacks startedBy/group/updatedAt: %s", r.Body)
		}
		versions[e.Detail.Version] = e
	}
	for i, ev := range want {
		e, ok := versions[ev.Version]
		if !ok || e.Detail.LastStatus != ev.LastStatus {
			t.Errorf("event %d (v%d %s) missing from the queue", i, ev.Version, ev.LastStatus)
		}
		if i > 0 && ev.Version <= want[i-1].Version {
			t.Errorf("versions do not increase: %d after %d", ev.Version, want[i-1].Version)
		}
	}
	snap, _ := d.Task(ours)
	if running, ok := findStatus(got, "RUNNING"); !ok || running.Detail.PrivateIPv4() != snap.IP {
		t.Errorf("RUNNING event carries IP %q, want %q", running.Detail.PrivateIPv4(), snap.IP)
	}
	if stopped, ok := findStatus(got, "STOPPED"); !ok || stopped.Detail.StopCode != "UserInitiated" || stopped.Detail.StoppedReason != "test" {
		t.Errorf("STOPPED event = %+v", stopped.Detail)
	}
	// kumo builds the envelope itself: it drops "resources" (real
	// EventBridge keeps them). Record the fact where it shows.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(got[0].Body, &raw); err == nil {
		if _, ok := raw["resources"]; !ok {
			t.Log("kumo: delivered envelopes carry no resources field")
		}
	}
}

func findStatus(got []awstest.Received, status string) (events.TaskStateChange, bool) {
	for _, r := range got {
		if r.Event.Detail.LastStatus == status {
			return r.Event, true
		}
	}
	return events.TaskStateChange{}, false
}
