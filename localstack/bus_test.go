package localstack_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus"
)

// TestBusOverScriptQueues builds the backend's SQS bus on the queues the init
// script created (bus.New refuses missing queues, missing DLQs and short
// visibility timeouts), sends a command through it, and checks the rule
// forwards this cluster's workspace task events, and only those, to the
// task-events queue, where the bus reads the raw EventBridge envelope.
func TestBusOverScriptQueues(t *testing.T) {
	t.Parallel()
	n := loadNames(t)
	tf := terraformMessaging(t)
	d := sharedDeployment(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	b, err := bus.New(ctx, bus.Options{
		Kind:            bus.KindSQS,
		PublishTopics:   []string{events.TopicWorkspaceRequested, events.TopicWorkspaceReleased},
		SubscribeTopics: []string{events.TopicWorkspaceRequested, events.TopicWorkspaceReleased, events.TopicTaskEvents},
		DrainTimeout:    5 * time.Second,
		Logger:          slog.New(slog.DiscardHandler),
		SQS: bus.SQSOptions{
			AWSConfig:         awsConfig(),
			Endpoint:          d.endpoint,
			QueuePrefix:       d.queuePrefix,
			VisibilityTimeout: time.Duration(tf.commandVisibility) * time.Second,
			WaitTime:          time.Second,
		},
	})
	if err != nil {
		t.Fatalf("bus on the script's queues: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if got, want := b.Queues().DeadLetter(events.TopicWorkspaceRequested), d.queuePrefix+n.Queues.WorkspaceRequested+n.DeadLetterSuffix; got != want {
		t.Errorf("bus dead-letter queue %q, script created %q", got, want)
	}

	t.Run("command", func(t *testing.T) {
		sub := b.Subscriber()
		t.Cleanup(func() { _ = sub.Close() })
		msgs, err := sub.Subscribe(ctx, events.TopicWorkspaceRequested)
		if err != nil {
			t.Fatal(err)
		}
		cmd := events.WorkspaceRequested{
			SchemaVersion:  1,
			ConversationID: "conv-" + d.queuePrefix[:len(d.queuePrefix)-1],
			RequestID:      "req-1",
			Tenant:         "default",
			RequestedAt:    time.Now().UTC().Truncate(time.Second),
		}
		if err := b.Commands().PublishRequested(events.WithCorrelationID(ctx, "corr-1"), cmd); err != nil {
			t.Fatalf("publish: %v", err)
		}
		msg := next(ctx, t, msgs)
		got, err := events.DecodeRequested(msg.Payload)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if got.ConversationID != cmd.ConversationID || !got.RequestedAt.Equal(cmd.RequestedAt) {
			t.Errorf("received %+v, sent %+v", got, cmd)
		}
		if bus.CorrelationID(msg) != "corr-1" {
			t.Errorf("correlation id %q", bus.CorrelationID(msg))
		}
		msg.Ack()
	})

	t.Run("task events through the rule", func(t *testing.T) {
		sub := b.Subscriber()
		t.Cleanup(func() { _ = sub.Close() })
		msgs, err := sub.Subscribe(ctx, events.TopicTaskEvents)
		if err != nil {
			t.Fatal(err)
		}
		eb := eventbridge.NewFromConfig(awsConfig(), func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(d.endpoint) })
		put := func(cluster, startedBy, taskID string) {
			t.Helper()
			detail, _ := json.Marshal(map[string]any{
				"clusterArn": cluster, "startedBy": startedBy, "version": 3,
				"taskArn":    "arn:aws:ecs:us-east-1:000000000000:task/" + d.namePrefix + "/" + taskID,
				"lastStatus": "RUNNING", "desiredStatus": "RUNNING",
			})
			out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
				Source: aws.String("aws.ecs"), DetailType: aws.String("ECS Task State Change"), Detail: aws.String(string(detail)),
			}}})
			if err != nil || out.FailedEntryCount != 0 {
				t.Fatalf("put event: %v %+v", err, out)
			}
		}
		// Not ours: the backend service's tasks, and another cluster.
		put(d.clusterARN, "ecs-svc/1234567890", "backend")
		put("arn:aws:ecs:us-east-1:000000000000:cluster/other", n.StartedBy, "other")
		put(d.clusterARN, n.StartedBy, "workspace")

		msg := next(ctx, t, msgs)
		e, err := events.DecodeTaskStateChange(msg.Payload)
		if err != nil {
			t.Fatalf("decode envelope %s: %v", msg.Payload, err)
		}
		msg.Ack()
		if e.Detail.StartedBy != n.StartedBy || e.Detail.ClusterArn != d.clusterARN {
			t.Fatalf("the rule forwarded %s (startedBy %q, cluster %q): only this cluster's %q tasks may pass",
				e.Detail.TaskArn, e.Detail.StartedBy, e.Detail.ClusterArn, n.StartedBy)
		}
	})
}

func next(ctx context.Context, t testing.TB, msgs <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if !ok {
			t.Fatal("subscription closed")
		}
		return m
	case <-ctx.Done():
		t.Fatal("no message before the deadline")
		return nil
	}
}
