package awsrules_test

import (
	"testing"

	"github.com/workspaced/workspaced/events/bus/bustest"
)

func TestMain(m *testing.M) { bustest.VerifyTestMain(m, bustest.GoleakOptions()...) }
