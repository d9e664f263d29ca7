package awstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/internal/ecsdouble"
)

// TaskEventRule renders the Terraform EventBridge pattern for ECS task
// state changes (terraform/modules/messaging/templates/...) for the cluster
// and startedBy prefix, puts it as a rule on the default bus and targets
// the queue, as Terraform does. It returns the rule name (unique per call).
func TaskEventRule(t testing.TB, eb *eventbridge.Client, sq *sqs.Client, clusterArn, startedByPrefix, queueURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pattern, err := ecsdouble.RenderTemplateFile(ecsdouble.TaskEventPatternTemplate, map[string]string{
		"cluster_arn":       clusterArn,
		"started_by_prefix": startedByPrefix,
	})
	if err != nil {
		t.Fatalf("render task event pattern: %v", err)
	}
	if !json.Valid(pattern) {
		t.Fatalf("rendered task event pattern is not JSON:\n%s", pattern)
	}
	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("get queue arn: %v", err)
	}
	queueArn := attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	name := "task-events-" + randomHex(t, 4)
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{
		Name:         aws.String(name),
		EventPattern: aws.String(string(pattern)),
		State:        ebtypes.RuleStateEnabled,
	}); err != nil {
		t.Fatalf("put rule: %v", err)
	}
	out, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{
		Rule:    aws.String(name),
		Targets: []ebtypes.Target{{Id: aws.String("task-events-queue"), Arn: aws.String(queueArn)}},
	})
	if err != nil || out.FailedEntryCount > 0 {
		t.Fatalf("put targets: %v (%d failed)", err, out.FailedEntryCount)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = eb.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{Rule: aws.String(name), Ids: []string{"task-events-queue"}})
		_, _ = eb.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String(name)})
	})
	return name
}

// Received is one message taken from a task-events queue.
type Received struct {
	Body  []byte
	Event events.TaskStateChange
}

// ReceiveTaskEvents long-polls the queue, deleting what it receives and
// decoding it as a task state change envelope, until done returns true for
// the messages so far or ctx ends. A body that does not decode fails the
// test: everything on the task-events queue must be an envelope.
func ReceiveTaskEvents(ctx context.Context, t testing.TB, sq *sqs.Client, queueURL string, done func([]Received) bool) []Received {
	t.Helper()
	var got []Received
	for !done(got) {
		out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(queueURL),
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     1,
		})
		if err != nil {
			t.Fatalf("receive from %s (have %d): %v", queueURL, len(got), err)
		}
		for _, m := range out.Messages {
			ev, err := events.DecodeTaskStateChange([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatalf("queue message is not a task state change: %v\n%s", err, aws.ToString(m.Body))
			}
			got = append(got, Received{Body: []byte(aws.ToString(m.Body)), Event: ev})
			if _, err := sq.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("delete message: %v", err)
			}
		}
	}
	return got
}

// DeliveredEvent is an entry of kumo's record of rule matches.
type DeliveredEvent struct {
	EventID    string `json:"EventId"`
	Source     string `json:"Source"`
	DetailType string `json:"DetailType"`
	Detail     string `json:"Detail"`
	RuleName   string `json:"RuleName"`
	TargetArn  string `json:"TargetArn"`
}

// DeliveredEvents returns kumo's record of events that matched a rule
// (GET /kumo/eventbridge/delivered-events, kept synchronously by PutEvents,
// so it is complete once PutEvents returned), for one rule.
func DeliveredEvents(t testing.TB, emulatorURL, rule string) []DeliveredEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, emulatorURL+"/kumo/eventbridge/delivered-events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("get delivered events: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get delivered events: %s %v", resp.Status, err)
	}
	var all []DeliveredEvent
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatalf("decode delivered events: %v\n%s", err, b)
	}
	var out []DeliveredEvent
	for _, e := range all {
		if e.RuleName == rule {
			out = append(out, e)
		}
	}
	return out
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
