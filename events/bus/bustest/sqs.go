package bustest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/sivchari/kumo"
	"go.uber.org/goleak"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus"
)

// Queue settings CreateQueues uses; the LocalStack init scripts and
// Terraform use the same ones.
const (
	// VisibilityTimeout of every topic queue: bus.DefaultVisibilityTimeout.
	VisibilityTimeout = bus.DefaultVisibilityTimeout
	// MaxReceiveCount of every redrive policy: after this many receives
	// without a delete (a crashed consumer), SQS moves the message to the
	// dead-letter queue.
	MaxReceiveCount = 5
)

// Emulator is the in-process AWS emulator (kumo) with a client config for
// it. State is shared by the whole process and nothing resets it: use
// UniquePrefix for queue names.
type Emulator struct {
	// URL is the endpoint to pass as bus.SQSOptions.Endpoint.
	URL string
	// Config has static credentials, a region and an HTTP client whose
	// idle connections are closed at cleanup.
	Config aws.Config
	// SQS is a client for the emulator.
	SQS *sqs.Client
}

// VerifyTestMain runs the package's tests, closes the shared emulator, and
// then checks for leaked goroutines as goleak.VerifyTestMain does.
func VerifyTestMain(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	CloseEmulator()
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// CloseEmulator closes the process's emulator, if one was started.
func CloseEmulator() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		shared.srv.Close()
		shared.srv = nil
	}
}

// GoleakOptions are the goleak options a package using the emulator needs:
// kumo starts a DynamoDB TTL reaper in its package init that never ends.
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(m, bustest.GoleakOptions()...) }
func GoleakOptions() []goleak.Option {
	return []goleak.Option{goleak.IgnoreTopFunction("github.com/sivchari/kumo/internal/service/dynamodb.(*MemoryStorage).ttlReaper")}
}

// shared is the process's one kumo server, started on first use and
// closed by VerifyTestMain after the last test. kumo wires its services
// through package-level state: creating a second server races with the
// goroutines the first one's S3 PutObject leaves behind (its notification
// senders), and every server sees the same queues anyway, so a process
// never creates more than one.
var shared struct {
	mu  sync.Mutex
	srv *kumo.Server
}

// StartEmulator returns the process's in-process emulator, starting it if
// needed. Safe for parallel tests. A package that uses it ends its
// TestMain with VerifyTestMain, which closes it.
func StartEmulator(t testing.TB) *Emulator {
	t.Helper()
	shared.mu.Lock()
	if shared.srv == nil {
		shared.srv = kumo.NewServer()
	}
	srv := shared.srv
	shared.mu.Unlock()
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  &http.Client{Transport: transport},
	}
	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	return &Emulator{URL: srv.URL, Config: cfg, SQS: client}
}

// SQSOptions returns bus options for this emulator with queue prefix.
func (e *Emulator) SQSOptions(prefix string) bus.SQSOptions {
	return bus.SQSOptions{AWSConfig: e.Config, Endpoint: e.URL, QueuePrefix: prefix}
}

// UniquePrefix returns a fresh queue-name prefix such as "t-1a2b3c4d-".
func UniquePrefix(t testing.TB) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "t-" + hex.EncodeToString(b[:]) + "-"
}

// CreateQueues creates, for every SQS topic (events.QueueTopics), the
// dead-letter queue prefix+topic+events.DeadLetterSuffix and the queue
// prefix+topic with VisibilityTimeout and a redrive policy to it
// (MaxReceiveCount). It fails the test on error.
func CreateQueues(t testing.TB, client *sqs.Client, prefix string) {
	t.Helper()
	for _, topic := range events.QueueTopics() {
		CreateTopicQueues(t, client, prefix, topic)
	}
}

// CreateTopicQueues creates one topic's queue and dead-letter queue, as
// CreateQueues does.
func CreateTopicQueues(t testing.TB, client *sqs.Client, prefix, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := bus.Queues{Prefix: prefix}
	dlq, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(q.DeadLetter(topic))})
	if err != nil {
		t.Fatalf("create queue %s: %v", q.DeadLetter(topic), err)
	}
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       dlq.QueueUrl,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("get arn of %s: %v", q.DeadLetter(topic), err)
	}
	redrive, err := json.Marshal(map[string]any{
		"deadLetterTargetArn": attrs.Attributes[string(types.QueueAttributeNameQueueArn)],
		"maxReceiveCount":     MaxReceiveCount,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(q.Name(topic)),
		Attributes: map[string]string{
			string(types.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(VisibilityTimeout / time.Second)),
			string(types.QueueAttributeNameRedrivePolicy):     string(redrive),
		},
	}); err != nil {
		t.Fatalf("create queue %s: %v", q.Name(topic), err)
	}
}

// SendRaw sends body to queue prefix+topic with a plain SendMessage and no
// message attributes, the way EventBridge delivers to its SQS target.
func SendRaw(t testing.TB, client *sqs.Client, prefix, topic string, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := queueURL(ctx, t, client, bus.Queues{Prefix: prefix}.Name(topic))
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(string(body))}); err != nil {
		t.Fatalf("send to %s: %v", topic, err)
	}
}

// Depth returns how many messages queue prefix+topic holds, visible or in
// flight (received, not deleted).
func Depth(t testing.TB, client *sqs.Client, prefix, topic string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := queueURL(ctx, t, client, bus.Queues{Prefix: prefix}.Name(topic))
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatalf("get attributes of %s: %v", topic, err)
	}
	n := 0
	for _, k := range []types.QueueAttributeName{
		types.QueueAttributeNameApproximateNumberOfMessages,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
	} {
		v, err := strconv.Atoi(out.Attributes[string(k)])
		if err != nil {
			t.Fatalf("attribute %s of %s: %v", k, topic, err)
		}
		n += v
	}
	return n
}

func queueURL(ctx context.Context, t testing.TB, client *sqs.Client, name string) string {
	t.Helper()
	out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("get url of %s: %v", name, err)
	}
	return *out.QueueUrl
}
