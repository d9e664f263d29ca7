package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	wsqs "github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/workspaced/workspaced/events"
)

// ErrQueueNotFound means a queue the process needs does not exist. Queues
// are created by Terraform or the LocalStack init scripts, never by the
// application.
var ErrQueueNotFound = errors.New("sqs queue does not exist (queues are created by Terraform or the LocalStack init scripts, never by workspaced)")

// Queues maps topics to SQS queue names: the one place that knows the
// naming rule shared with Terraform (deploy/names.json).
type Queues struct {
	// Prefix is prepended to every topic, e.g. "staging-".
	Prefix string
}

// Name returns the queue of topic: Prefix + topic.
func (q Queues) Name(topic string) string { return q.Prefix + topic }

// DeadLetter returns the dead-letter queue of topic's queue:
// Name(topic) + events.DeadLetterSuffix.
func (q Queues) DeadLetter(topic string) string { return q.Name(DeadLetterTopic(topic)) }

// DeadLetterTopic is the topic whose queue is topic's dead-letter queue.
func DeadLetterTopic(topic string) string { return topic + events.DeadLetterSuffix }

// queueResolver implements watermill-aws's QueueUrlResolver with Queues'
// naming and a clear error for missing queues. Found URLs are cached;
// misses are not, so a queue created later is picked up.
type queueResolver struct {
	queues Queues
	mu     sync.RWMutex
	urls   map[string]string // queue name → URL
}

var _ wsqs.QueueUrlResolver = (*queueResolver)(nil)

func newQueueResolver(q Queues) *queueResolver {
	return &queueResolver{queues: q, urls: map[string]string{}}
}

// ResolveQueueUrl implements wsqs.QueueUrlResolver.
func (r *queueResolver) ResolveQueueUrl(ctx context.Context, p wsqs.ResolveQueueUrlParams) (wsqs.QueueUrlResolverResult, error) {
	url, err := r.url(ctx, p.SqsClient, p.Topic)
	if err != nil {
		return wsqs.QueueUrlResolverResult{}, err
	}
	exists := true
	u := wsqs.QueueURL(url)
	return wsqs.QueueUrlResolverResult{QueueName: wsqs.QueueName(r.queues.Name(p.Topic)), QueueURL: &u, Exists: &exists}, nil
}

// url returns the URL of topic's queue, or an error wrapping
// ErrQueueNotFound that names the queue.
func (r *queueResolver) url(ctx context.Context, client *sqs.Client, topic string) (string, error) {
	name := r.queues.Name(topic)
	r.mu.RLock()
	url, ok := r.urls[name]
	r.mu.RUnlock()
	if ok {
		return url, nil
	}
	out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		if queueMissing(err) {
			return "", fmt.Errorf("queue %q (topic %q): %w", name, topic, ErrQueueNotFound)
		}
		return "", fmt.Errorf("get url of queue %q (topic %q): %w", name, topic, err)
	}
	if out.QueueUrl == nil || *out.QueueUrl == "" {
		return "", fmt.Errorf("get url of queue %q (topic %q): empty url", name, topic)
	}
	r.mu.Lock()
	r.urls[name] = *out.QueueUrl
	r.mu.Unlock()
	return *out.QueueUrl, nil
}

// queueMissing recognises "no such queue". The SDK maps the JSON protocol's
// QueueDoesNotExist to a typed error; emulators (kumo, older LocalStack)
// answer with the Query protocol's code, which the SDK leaves as a
// GenericAPIError.
func queueMissing(err error) bool {
	var typed *types.QueueDoesNotExist
	if errors.As(err, &typed) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "NonExistentQueue":
			return true
		}
	}
	return false
}

// checkQueues verifies, before anything is received, that every queue the
// process will use exists and that consumed queues hide a received message
// for at least visibility. All problems are reported at once.
func checkQueues(ctx context.Context, client *sqs.Client, r *queueResolver, publish, subscribe []string, visibility time.Duration) error {
	var errs []error
	seen := map[string]bool{}
	need := func(topic string) bool {
		if seen[topic] {
			return false
		}
		seen[topic] = true
		if _, err := r.url(ctx, client, topic); err != nil {
			errs = append(errs, err)
			return false
		}
		return true
	}
	for _, t := range publish {
		need(t)
	}
	for _, t := range subscribe {
		need(DeadLetterTopic(t))
		if !need(t) {
			continue
		}
		if err := checkVisibility(ctx, client, r, t, visibility); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func checkVisibility(ctx context.Context, client *sqs.Client, r *queueResolver, topic string, want time.Duration) error {
	url, err := r.url(ctx, client, topic)
	if err != nil {
		return err
	}
	name := r.queues.Name(topic)
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout},
	})
	if err != nil {
		return fmt.Errorf("get attributes of queue %q: %w", name, err)
	}
	raw, ok := out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)]
	if !ok {
		return fmt.Errorf("queue %q reports no VisibilityTimeout", name)
	}
	secs, err := strconv.Atoi(raw)
	if err != nil {
		return fmt.Errorf("queue %q VisibilityTimeout %q: %w", name, raw, err)
	}
	if got := time.Duration(secs) * time.Second; got < want {
		return fmt.Errorf("queue %q has a visibility timeout of %v, below the configured %v: a message would be redelivered while still being handled", name, got, want)
	}
	return nil
}
