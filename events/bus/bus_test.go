package bus_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/workspaced/workspaced/events/bus/bustest"
)

func TestMain(m *testing.M) {
	// kumo starts a DynamoDB TTL reaper in its package init; it is not ours.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/sivchari/kumo/internal/service/dynamodb.(*MemoryStorage).ttlReaper"))
}

func TestConformanceGoChannel(t *testing.T) {
	t.Parallel()
	bustest.Run(t, bustest.GoChannel())
}

func TestConformanceSQS(t *testing.T) {
	t.Parallel()
	bustest.Run(t, bustest.SQS(bustest.StartEmulator(t)))
}
