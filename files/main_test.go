package files_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/workspaced/workspaced/events/bus/bustest"
)

func TestMain(m *testing.M) {
	if runMemoryChild() {
		return
	}
	goleak.VerifyTestMain(m, bustest.GoleakOptions()...)
}
