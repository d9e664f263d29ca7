package ecsdouble_test

import (
	"testing"

	"github.com/workspaced/workspaced/events/bus/bustest"
)

// TestMain checks that doubles stop every goroutine they start (kumo starts
// one of its own at init).
func TestMain(m *testing.M) {
	bustest.VerifyTestMain(m, bustest.GoleakOptions()...)
}
