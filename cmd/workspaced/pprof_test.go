package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPprofListener: profiles are off by default (no listener, nothing on
// the API port); with PPROF_ADDR they are served there, and still not on
// the API port.
func TestPprofListener(t *testing.T) {
	t.Parallel()
	get := func(t *testing.T, url string) (int, string) {
		t.Helper()
		hc := &http.Client{Timeout: 30 * time.Second}
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name string
		env  map[string]string
		on   bool
	}{
		{"default off", nil, false},
		{"PPROF_ADDR set", map[string]string{"PPROF_ADDR": "127.0.0.1:0"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startStack(t, tt.env)
			if code, body := get(t, s.url+"/debug/pprof/"); code == http.StatusOK || strings.Contains(body, "goroutine") {
				t.Errorf("API port serves profiles: %d %q", code, body)
			}
			addr := s.app.PprofAddr()
			if !tt.on {
				if addr != nil {
					t.Fatalf("profile listener on %s without PPROF_ADDR", addr)
				}
				return
			}
			if addr == nil {
				t.Fatal("PPROF_ADDR set but no profile listener")
			}
			base := "http://" + addr.String() + "/debug/pprof/"
			if code, body := get(t, base); code != http.StatusOK || !strings.Contains(body, "goroutine") {
				t.Errorf("GET /debug/pprof/: %d %q", code, body)
			}
			if code, body := get(t, base+"goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
				t.Errorf("goroutine profile: %d %.200q", code, body)
			}
		})
	}
}
