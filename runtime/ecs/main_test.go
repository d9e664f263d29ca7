package ecs_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the runtime and the doubles stop every goroutine they start (kumo starts
// one of its own at init).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/sivchari/kumo/internal/service/dynamodb.(*MemoryStorage).ttlReaper"))
}
