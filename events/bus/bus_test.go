package bus_test

import (
	"testing"

	"github.com/workspaced/workspaced/events/bus/bustest"
)

func TestMain(m *testing.M) {
	bustest.VerifyTestMain(m, bustest.GoleakOptions()...)
}

func TestConformanceGoChannel(t *testing.T) {
	t.Parallel()
	bustest.Run(t, bustest.GoChannel())
}

func TestConformanceSQS(t *testing.T) {
	t.Parallel()
	bustest.Run(t, bustest.SQS(bustest.StartEmulator(t)))
}
