package selftest_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/workspaced/workspaced/selftest"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		out     string
		passed  bool
		failed  []string
		wantErr error
	}{
		{"passing report after other output", "warming up\n{\"schema_version\":1,\"checks\":[{\"id\":\"a\",\"status\":\"pass\"},{\"id\":\"b\",\"status\":\"not-applicable\"}],\"passed\":false}\n", true, nil, nil},
		{"the checks decide, not the summary", `{"schema_version":1,"checks":[{"id":"a","status":"fail"}],"passed":true}`, false, []string{"a"}, nil},
		{"unknown status counts as failed", `{"schema_version":1,"checks":[{"id":"a","status":"maybe"}]}`, false, []string{"a"}, nil},
		{"no checks is no pass", `{"schema_version":1,"checks":[]}`, false, nil, nil},
		{"no report", "exec: not found\n", false, nil, selftest.ErrNoReport},
		{"JSON without a schema", `{"checks":[]}`, false, nil, selftest.ErrNoReport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := selftest.Parse([]byte(tt.out))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if r.Passed != tt.passed || !slices.Equal(r.Failed(), tt.failed) {
				t.Errorf("passed %v failed %v, want %v %v", r.Passed, r.Failed(), tt.passed, tt.failed)
			}
		})
	}
	if _, err := selftest.Parse([]byte(`{"schema_version":99,"checks":[]}`)); err == nil {
		t.Error("a newer schema parsed without error")
	}
}
