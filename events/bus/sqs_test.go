package bus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus"
	"github.com/workspaced/workspaced/events/bus/bustest"
)

const waitFor = 30 * time.Second

func sqsOptions(t *testing.T, e *bustest.Emulator, prefix string) bus.Options {
	return bus.Options{Kind: bus.KindSQS, DrainTimeout: 10 * time.Second, Logger: bustest.Logger(t), SQS: e.SQSOptions(prefix)}
}

func TestSQSStartupRefusesShortVisibilityTimeout(t *testing.T) {
	t.Parallel()
	e := bustest.StartEmulator(t)
	prefix := bustest.UniquePrefix(t)
	q := bus.Queues{Prefix: prefix}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for _, name := range []string{q.Name(events.TopicWorkspaceRequested), q.DeadLetter(events.TopicWorkspaceRequested)} {
		// The SQS default visibility timeout (30s), as a forgetful init script would leave it.
		if _, err := e.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}
	opts := sqsOptions(t, e, prefix)
	opts.SubscribeTopics = []string{events.TopicWorkspaceRequested}
	_, err := bus.New(ctx, opts)
	if err == nil || !strings.Contains(err.Error(), "visibility timeout of 30s") || !strings.Contains(err.Error(), q.Name(events.TopicWorkspaceRequested)) {
		t.Fatalf("New = %v, want a visibility timeout error naming the queue", err)
	}
	// Publishing only needs the queue to exist.
	opts.SubscribeTopics, opts.PublishTopics = nil, []string{events.TopicWorkspaceRequested}
	b, err := bus.New(ctx, opts)
	if err != nil {
		t.Fatalf("publish-only bus: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSQSRouterRefusesRetriesBeyondVisibilityTimeout(t *testing.T) {
	t.Parallel()
	e := bustest.StartEmulator(t)
	prefix := bustest.UniquePrefix(t)
	bustest.CreateQueues(t, e.SQS, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	b, err := bus.New(ctx, sqsOptions(t, e, prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = bus.NewRouter(b, bus.RouterOptions{Retry: bus.RetryOptions{MaxRetries: 20, MaxInterval: 10 * time.Second}})
	if err == nil || !strings.Contains(err.Error(), "visibility timeout") {
		t.Fatalf("NewRouter = %v, want a refusal", err)
	}
	r, err := bus.NewRouter(b, bus.RouterOptions{})
	if err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSQSCloseReleasesReceivedMessages: a message received in the same
// batch as an in-flight one, but not handed to a handler before Close, is
// made visible again at once instead of hiding for the visibility timeout.
func TestSQSCloseReleasesReceivedMessages(t *testing.T) {
	t.Parallel()
	e := bustest.StartEmulator(t)
	prefix := bustest.UniquePrefix(t)
	bustest.CreateQueues(t, e.SQS, prefix)
	topic := events.TopicWorkspaceRequested
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	opts := sqsOptions(t, e, prefix)
	opts.SQS.MaxMessages = 2
	b, err := bus.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, id := range []string{"first", "second"} {
		msg := bus.NewCommandMessage(events.TypeWorkspaceRequested, []byte(id), "c")
		if err := b.Publisher().Publish(topic, msg); err != nil {
			t.Fatal(err)
		}
	}
	r, err := bus.NewRouter(b, bus.RouterOptions{Retry: bus.RetryOptions{AttemptTimeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan string, 2)
	release := make(chan struct{})
	r.AddConsumerHandler("slow", topic, func(msg *message.Message) error {
		started <- string(msg.Payload)
		<-release
		return nil
	})
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(context.Background()) }()
	var handled string
	select {
	case handled = <-started:
	case <-time.After(waitFor):
		t.Fatal("no message handled")
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	<-r.Closing()
	close(release)
	for _, ch := range []chan error{closed, runDone} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(waitFor):
			t.Fatal("router did not stop")
		}
	}
	select {
	case other := <-started:
		t.Fatalf("%q was handled after Close although %q was in flight", other, handled)
	default:
	}
	// Without the release the message would hide for the 120s visibility
	// timeout and this receive would return nothing. (kumo still counts an
	// expired in-flight message as NotVisible until the next receive, so
	// the queue attributes cannot show it.)
	url, err := e.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(b.Queues().Name(topic))})
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url.QueueUrl, WaitTimeSeconds: 5, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) == handled {
		t.Fatalf("after Close the queue offers %d messages, want the unhandled one", len(out.Messages))
	}
}
