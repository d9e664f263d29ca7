package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Kind names a bus implementation.
type Kind string

// The two buses of docs/contracts.md §5.
const (
	KindGoChannel Kind = "gochannel"
	KindSQS       Kind = "sqs"
)

// Defaults applied by New to zero-valued options.
const (
	DefaultDrainTimeout      = 30 * time.Second
	DefaultVisibilityTimeout = 120 * time.Second
	DefaultWaitTime          = 20 * time.Second
	DefaultPublishTimeout    = 10 * time.Second
	DefaultBacklog           = 10000
)

// Options configures New.
type Options struct {
	// Kind picks the bus. Required.
	Kind Kind
	// PublishTopics and SubscribeTopics list every topic this process will
	// publish to or consume from. On SQS, New fails unless each one's queue
	// exists, and, for consumed topics, its dead-letter queue too (the
	// poison destination). Ignored by the gochannel bus.
	PublishTopics   []string
	SubscribeTopics []string
	// DrainTimeout bounds how long closing a subscriber waits for in-flight
	// handlers. Default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Logger receives the bus's and Watermill's logs (Watermill's Info is
	// demoted to Debug). Default slog.Default().
	Logger *slog.Logger

	SQS       SQSOptions
	GoChannel GoChannelOptions
}

// SQSOptions configures the SQS bus.
type SQSOptions struct {
	// AWSConfig carries credentials, retryer and HTTP client, built by the
	// caller (config.LoadDefaultConfig in cmd/, static credentials in
	// tests). Credentials are required.
	AWSConfig aws.Config
	// Region overrides AWSConfig.Region when set. One of the two is required.
	Region string
	// Endpoint overrides the SQS endpoint (BaseEndpoint), for LocalStack or
	// the in-process emulator. Empty means AWS.
	Endpoint string
	// QueuePrefix is prepended to every topic to name its queue, e.g.
	// "staging-".
	QueuePrefix string
	// VisibilityTimeout is what the consumed queues are configured with (in
	// Terraform). New checks each queue's actual value is at least this, and
	// NewRouter refuses retry settings whose worst case exceeds it. Default
	// DefaultVisibilityTimeout.
	VisibilityTimeout time.Duration
	// WaitTime is the ReceiveMessage long-poll wait, 1s..20s, whole seconds.
	// Default DefaultWaitTime.
	WaitTime time.Duration
	// MaxMessages is how many messages one ReceiveMessage returns, 1..10.
	// They are handled one after another and all count against the
	// visibility timeout. Default 1.
	MaxMessages int
	// ConsumeWorkers is how many receive loops run per subscription, i.e.
	// how many messages of one topic are handled at once. Default 1.
	ConsumeWorkers int
	// PublishTimeout bounds one SendMessage (watermill-aws publishes with
	// context.Background, so the caller's context cannot cancel it).
	// Default DefaultPublishTimeout.
	PublishTimeout time.Duration
}

// GoChannelOptions configures the in-process bus.
type GoChannelOptions struct {
	// Backlog bounds, per topic, the messages held until the topic's first
	// subscription. Default DefaultBacklog.
	Backlog int
}

func (o *Options) setDefaults() {
	if o.DrainTimeout == 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &o.SQS
	if s.VisibilityTimeout == 0 {
		s.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if s.WaitTime == 0 {
		s.WaitTime = DefaultWaitTime
	}
	if s.MaxMessages == 0 {
		s.MaxMessages = 1
	}
	if s.ConsumeWorkers == 0 {
		s.ConsumeWorkers = 1
	}
	if s.PublishTimeout == 0 {
		s.PublishTimeout = DefaultPublishTimeout
	}
	if o.GoChannel.Backlog == 0 {
		o.GoChannel.Backlog = DefaultBacklog
	}
}

func (o *Options) validate() error {
	var errs []error
	switch o.Kind {
	case KindGoChannel:
		if o.GoChannel.Backlog < 0 {
			errs = append(errs, fmt.Errorf("gochannel backlog %d is negative", o.GoChannel.Backlog))
		}
	case KindSQS:
		errs = append(errs, o.SQS.validate()...)
	default:
		errs = append(errs, fmt.Errorf("bus kind %q: want %q or %q", o.Kind, KindGoChannel, KindSQS))
	}
	if o.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("drain timeout %v is negative", o.DrainTimeout))
	}
	for _, t := range append(append([]string(nil), o.PublishTopics...), o.SubscribeTopics...) {
		if t == "" {
			errs = append(errs, errors.New("empty topic name"))
		}
	}
	return errors.Join(errs...)
}

func (s *SQSOptions) validate() []error {
	var errs []error
	if s.AWSConfig.Credentials == nil {
		errs = append(errs, errors.New("sqs: AWSConfig.Credentials is nil"))
	}
	if s.Region == "" && s.AWSConfig.Region == "" {
		errs = append(errs, errors.New("sqs: no region (set Region or AWSConfig.Region)"))
	}
	if s.VisibilityTimeout < time.Second || s.VisibilityTimeout > 12*time.Hour {
		errs = append(errs, fmt.Errorf("sqs: visibility timeout %v is outside 1s..12h", s.VisibilityTimeout))
	}
	if s.WaitTime < time.Second || s.WaitTime > 20*time.Second || s.WaitTime%time.Second != 0 {
		errs = append(errs, fmt.Errorf("sqs: wait time %v is not whole seconds in 1s..20s", s.WaitTime))
	}
	if s.MaxMessages < 1 || s.MaxMessages > 10 {
		errs = append(errs, fmt.Errorf("sqs: max messages %d is outside 1..10", s.MaxMessages))
	}
	if s.ConsumeWorkers < 1 {
		errs = append(errs, fmt.Errorf("sqs: consume workers %d is below 1", s.ConsumeWorkers))
	}
	if s.PublishTimeout < 0 {
		errs = append(errs, fmt.Errorf("sqs: publish timeout %v is negative", s.PublishTimeout))
	}
	return errs
}
