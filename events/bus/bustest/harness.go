// Package bustest is the conformance suite every bus passes (Run) and the
// helpers to test against a bus: the in-process AWS emulator, queue
// creation that matches Terraform and the LocalStack init scripts, raw
// EventBridge-style sends. Test code only.
package bustest

import (
	_ "embed"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/workspaced/workspaced/events/bus"
)

// ECSRunningEvent is the EventBridge "ECS Task State Change" example of the
// ECS developer guide: a RUNNING Fargate task with an eni attachment
// carrying privateIPv4Address 10.0.0.139, detail.version 4.
//
//go:embed testdata/ecs-running-eni.json
var ECSRunningEvent []byte

// testDrainTimeout bounds draining in the suite: every test acks what it
// receives, so only a bug waits this long.
const testDrainTimeout = 10 * time.Second

// Logger returns a logger writing to the test's output (shown for failing
// tests and with -v).
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// Features says what a bus can be tested for.
type Features struct {
	// StartupChecks: missing queues are reported when the bus or router
	// starts (SQS).
	StartupChecks bool
	// QueueDepth: Harness.Depth reports what is left in a topic's queue,
	// so acks can be checked to have reached it (SQS).
	QueueDepth bool
}

// Harness adapts one bus implementation to the suite.
type Harness struct {
	Features Features
	// Options returns options for a fresh bus of its own whose queues
	// exist (unique names: the emulator shares state).
	Options func(t *testing.T) bus.Options
	// OptionsWithoutQueues returns options for a fresh bus whose queues do
	// not exist. Required with StartupChecks.
	OptionsWithoutQueues func(t *testing.T) bus.Options
	// SendRaw puts body on topic with no Watermill metadata: what
	// EventBridge sends to SQS, what the Docker watcher publishes locally.
	SendRaw func(t *testing.T, b *bus.Bus, topic string, body []byte)
	// Depth returns the messages left in topic's queue, visible or in
	// flight. Required with QueueDepth.
	Depth func(t *testing.T, b *bus.Bus, topic string) int
}

// GoChannel is the harness of the in-process bus.
func GoChannel() Harness {
	return Harness{
		Options: func(t *testing.T) bus.Options {
			return bus.Options{Kind: bus.KindGoChannel, DrainTimeout: testDrainTimeout, Logger: Logger(t)}
		},
		SendRaw: func(t *testing.T, b *bus.Bus, topic string, body []byte) {
			t.Helper()
			if err := b.Publisher().Publish(topic, message.NewMessage(watermill.NewUUID(), body)); err != nil {
				t.Fatalf("publish raw to %s: %v", topic, err)
			}
		},
	}
}

// SQS is the harness of the SQS bus on emulator e: each bus gets a unique
// queue prefix, with queues made by CreateQueues.
func SQS(e *Emulator) Harness {
	opts := func(t *testing.T, prefix string) bus.Options {
		return bus.Options{Kind: bus.KindSQS, DrainTimeout: testDrainTimeout, Logger: Logger(t), SQS: e.SQSOptions(prefix)}
	}
	return Harness{
		Features: Features{StartupChecks: true, QueueDepth: true},
		Options: func(t *testing.T) bus.Options {
			prefix := UniquePrefix(t)
			CreateQueues(t, e.SQS, prefix)
			return opts(t, prefix)
		},
		OptionsWithoutQueues: func(t *testing.T) bus.Options { return opts(t, UniquePrefix(t)) },
		SendRaw: func(t *testing.T, b *bus.Bus, topic string, body []byte) {
			t.Helper()
			SendRaw(t, e.SQS, b.Queues().Prefix, topic, body)
		},
		Depth: func(t *testing.T, b *bus.Bus, topic string) int {
			t.Helper()
			return Depth(t, e.SQS, b.Queues().Prefix, topic)
		},
	}
}
