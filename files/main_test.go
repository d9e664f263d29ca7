package files_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/workspaced/workspaced/events/bus/bustest"
)

func TestMain(m *testing.M) {
	opts := append(bustest.GoleakOptions(),
		// With KUMO_DATA_DIR set (the memory test's child process) the
		// emulator flushes its metadata from a goroutine that never ends.
		goleak.IgnoreAnyFunction("github.com/sivchari/kumo/internal/storage.flushLoop"))
	bustest.VerifyTestMain(m, opts...)
}
