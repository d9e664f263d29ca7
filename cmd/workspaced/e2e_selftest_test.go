package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/selftest"
)

const otherKey = "other-key-0123456789abcdef"

// selfTestImage is the workspace image with workspace-selftest
// (WORKSPACE_TEST_IMAGE overrides it, e.g. a worktree's own build).
func selfTestImage() string { return testImage() }

// postSelfTest calls POST /v1/conversations/{conv}/selftest with key.
func (s *stack) postSelfTest(ctx context.Context, conv, key, body string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/v1/conversations/"+conv+"/selftest", strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestSelfTestThroughTheAPI runs the self-test through workspaced on the
// Docker runtime with its in-process credential proxy: 200 and a passing
// report (the proxy's refusals checked too), the conversation's owner
// only, and 500 with the report when the workspace differs from what it
// must be.
func TestSelfTestThroughTheAPI(t *testing.T) {
	t.Parallel()
	keys := "e2e:" + testKey + ",other:" + otherKey
	for _, tt := range []struct {
		name   string
		extra  map[string]string
		status int
		failed []string
	}{
		{name: "as configured", status: http.StatusOK},
		{name: "pids limit changed", extra: map[string]string{"WORKSPACE_PIDS_LIMIT": "300"},
			status: http.StatusInternalServerError, failed: []string{"resources.pids"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testenv.Image(t, testenv.Docker(t), selfTestImage())
			extra := map[string]string{"WORKSPACE_IMAGE": selfTestImage(), "API_KEYS": keys}
			for k, v := range tt.extra {
				extra[k] = v
			}
			s := startStack(t, extra)
			ctx := ctxFor(t, 3*time.Minute)
			code, body := s.postSelfTest(ctx, "st-"+strings.ReplaceAll(tt.name, " ", "-"), testKey, "")
			if code != tt.status {
				t.Fatalf("status %d, want %d: %s", code, tt.status, body)
			}
			var rep selftest.Report
			if err := json.Unmarshal(body, &rep); err != nil {
				t.Fatalf("decode report: %v: %s", err, body)
			}
			t.Logf("report: %s", body)
			if got := strings.Join(rep.Failed(), ","); got != strings.Join(tt.failed, ",") {
				t.Errorf("failed checks %q, want %q", got, tt.failed)
			}
			if c, _ := rep.Find("network.proxy_denies"); c.Status != selftest.Pass {
				t.Errorf("network.proxy_denies = %+v, want pass through the in-process proxy", c)
			}
			if rep.Runtime != selftest.RuntimeDocker {
				t.Errorf("runtime %q", rep.Runtime)
			}
		})
	}
	t.Run("only the owner", func(t *testing.T) {
		t.Parallel()
		s := startStack(t, map[string]string{"API_KEYS": keys})
		ctx := ctxFor(t, 3*time.Minute)
		if _, err := s.exec(ctx, "st-owned", `{"kind":"command","argv":["true"]}`); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			key, body string
			want      int
		}{
			{otherKey, "", http.StatusNotFound},
			{"wrong-key-0123456789abcdef", "", http.StatusUnauthorized},
			{testKey, `{"allowed_host":"no port"}`, http.StatusBadRequest},
			{testKey, `{"unknown":1}`, http.StatusBadRequest},
		} {
			if code, body := s.postSelfTest(ctx, "st-owned", tc.key, tc.body); code != tc.want {
				t.Errorf("key %s body %q: status %d, want %d: %s", tc.key[:5], tc.body, code, tc.want, body)
			}
		}
	})
}
