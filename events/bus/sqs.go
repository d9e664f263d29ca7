package bus

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsqs "github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"
)

// receiptHandleKey carries an SQS receipt handle from the unmarshaler to the
// draining subscriber; it is removed before a handler sees the message.
const receiptHandleKey = "_workspaced_sqs_receipt_handle"

// sqsBus holds the SQS clients and Watermill adapters of one Bus.
type sqsBus struct {
	opts     SQSOptions
	resolver *queueResolver
	control  *sqs.Client // startup checks, ChangeMessageVisibility
	pub      *wsqs.Publisher
	sub      *wsqs.Subscriber
	idle     func() // closes idle HTTP connections
}

// clientOptions are the SDK options every SQS client of the bus uses.
func (o SQSOptions) clientOptions() []func(*sqs.Options) {
	return []func(*sqs.Options){func(so *sqs.Options) {
		if o.Region != "" {
			so.Region = o.Region
		}
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
	}}
}

func newSQSBus(ctx context.Context, opts Options, wlog watermill.LoggerAdapter, track *tracker) (*sqsBus, error) {
	s := opts.SQS
	cfg := s.AWSConfig.Copy()
	if cfg.HTTPClient == nil {
		// Our own client, so Close can drop its idle connections.
		cfg.HTTPClient = awshttp.NewBuildableClient()
	}
	resolver := newQueueResolver(Queues{Prefix: s.QueuePrefix})
	control := sqs.NewFromConfig(cfg, s.clientOptions()...)
	if err := checkQueues(ctx, control, resolver, opts.PublishTopics, opts.SubscribeTopics, s.VisibilityTimeout); err != nil {
		return nil, err
	}

	pubOpts := append(s.clientOptions(), sqs.WithAPIOptions(operationTimeout(s.PublishTimeout)))
	pub, err := wsqs.NewPublisher(wsqs.PublisherConfig{
		AWSConfig:                   cfg,
		OptFns:                      pubOpts,
		DoNotCreateQueueIfNotExists: true,
		QueueUrlResolver:            resolver,
		Marshaler:                   wsqs.DefaultMarshalerUnmarshaler{},
	}, wlog)
	if err != nil {
		return nil, err
	}
	waitSeconds := int32(s.WaitTime / time.Second)
	maxMessages := int32(s.MaxMessages)
	sub, err := wsqs.NewSubscriber(wsqs.SubscriberConfig{
		AWSConfig:                   cfg,
		OptFns:                      append(s.clientOptions(), sqs.WithAPIOptions(trackDeletes(track))),
		DoNotCreateQueueIfNotExists: true,
		QueueUrlResolver:            resolver,
		ConsumeWorkers:              s.ConsumeWorkers,
		GenerateReceiveMessageInput: func(ctx context.Context, url wsqs.QueueURL) (*sqs.ReceiveMessageInput, error) {
			return &sqs.ReceiveMessageInput{
				QueueUrl:              aws.String(string(url)),
				MessageAttributeNames: []string{"All"},
				WaitTimeSeconds:       waitSeconds,
				MaxNumberOfMessages:   maxMessages,
			}, nil
		},
		Unmarshaler: receiptUnmarshaler{},
	}, wlog)
	if err != nil {
		return nil, err
	}
	return &sqsBus{opts: s, resolver: resolver, control: control, pub: pub, sub: sub, idle: closeIdle(cfg.HTTPClient)}, nil
}

// closeIdle returns a function dropping the idle connections of c, when c
// exposes them.
func closeIdle(c aws.HTTPClient) func() {
	switch c := c.(type) {
	case interface{ CloseIdleConnections() }:
		return c.CloseIdleConnections
	case interface{ GetTransport() *http.Transport }:
		return func() { c.GetTransport().CloseIdleConnections() }
	}
	return func() {}
}

// operationTimeout bounds every operation of a client: watermill-aws
// publishes with context.Background.
func operationTimeout(d time.Duration) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("workspacedOperationTimeout",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				ctx, cancel := context.WithTimeout(ctx, d)
				defer cancel()
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	}
}

// trackDeletes reports every finished DeleteMessage (watermill-aws's ack) to
// the tracker, so draining knows when acks have reached the queue.
func trackDeletes(t *tracker) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("workspacedTrackDeletes",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if _, ok := in.Parameters.(*sqs.DeleteMessageInput); ok {
					t.deleted()
				}
				return out, md, err
			}), middleware.Before)
	}
}

// receiptUnmarshaler is watermill-aws's default unmarshaler (raw bodies
// welcome: UUID falls back to the SQS MessageId, metadata empty) that also
// keeps the receipt handle for releasing undelivered messages.
type receiptUnmarshaler struct {
	wsqs.DefaultMarshalerUnmarshaler
}

func (u receiptUnmarshaler) Unmarshal(m *types.Message) (*message.Message, error) {
	msg, err := u.DefaultMarshalerUnmarshaler.Unmarshal(m)
	if err != nil {
		return nil, err
	}
	delete(msg.Metadata, receiptHandleKey) // never trust a sender's copy
	if m.ReceiptHandle != nil {
		msg.Metadata.Set(receiptHandleKey, *m.ReceiptHandle)
	}
	return msg, nil
}

// prepare strips the receipt handle before a handler sees the message; the
// returned function puts it back if the message is not delivered after all.
func (b *sqsBus) prepare(_ string, msg *message.Message) func() {
	handle, ok := msg.Metadata[receiptHandleKey]
	delete(msg.Metadata, receiptHandleKey)
	return func() {
		if ok {
			msg.Metadata.Set(receiptHandleKey, handle)
		}
	}
}

// release makes a message received while draining visible again at once,
// so another consumer takes it instead of waiting out the visibility
// timeout. Failure only delays redelivery.
func (b *sqsBus) release(logger *slog.Logger) func(string, *message.Message) {
	return func(topic string, msg *message.Message) {
		handle := msg.Metadata.Get(receiptHandleKey)
		if handle == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		url, err := b.resolver.url(ctx, b.control, topic)
		if err == nil {
			_, err = b.control.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
				QueueUrl:          aws.String(url),
				ReceiptHandle:     aws.String(handle),
				VisibilityTimeout: 0,
			})
		}
		if err != nil {
			logger.Warn("cannot release undelivered message; it returns after the visibility timeout",
				"topic", topic, "message_uuid", msg.UUID, "err", err)
		}
	}
}
