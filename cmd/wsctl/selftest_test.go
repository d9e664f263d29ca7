package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSelfTest(t *testing.T) {
	t.Parallel()
	const passed = `{"schema_version":1,"runtime":"docker","checks":[{"id":"identity.user","status":"pass","observed":"uid 1000"}],"passed":true}`
	const failed = `{"schema_version":1,"runtime":"ecs","checks":[{"id":"identity.seccomp","status":"fail","observed":"Seccomp 0","meaning":"no filter"}],"passed":false}`
	tests := []struct {
		name       string
		args       []string
		status     int
		body       string
		wantCode   int
		wantOut    string
		wantErr    string
		wantReqHas string
	}{
		{"passed", []string{"c1"}, 200, passed, 0, "PASS            identity.user", "", "{}"},
		{"a check failed", []string{"--json", "c1"}, 500, failed, 1, `"id": "identity.seccomp"`, "self-test failed: identity.seccomp", "{}"},
		{"could not run", []string{"c1"}, 502, `{"error":{"code":"selftest_no_report","message":"the self-test printed no report"}}`, 1, "", "selftest_no_report", "{}"},
		{"options", []string{"--allowed-host", "api.example.com:443", "--no-fork-bomb", "c1"}, 200, passed, 0, "", "", `"allowed_host":"api.example.com:443"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var gotBody string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				gotBody = string(b)
				if r.Method != http.MethodPost || r.URL.Path != "/v1/conversations/c1/selftest" || r.Header.Get("Authorization") != "Bearer k" {
					http.Error(w, "bad request line", http.StatusTeapot)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			var stdout, stderr strings.Builder
			getenv := func(k string) string {
				return map[string]string{"WORKSPACED_URL": srv.URL, "WORKSPACED_API_KEY": "k"}[k]
			}
			code := run(context.Background(), append([]string{"selftest"}, tt.args...), getenv, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantOut) || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stdout %q stderr %q, want %q / %q", stdout.String(), stderr.String(), tt.wantOut, tt.wantErr)
			}
			if !strings.Contains(gotBody, tt.wantReqHas) {
				t.Errorf("request body %q lacks %q", gotBody, tt.wantReqHas)
			}
		})
	}
}
