package docker

import (
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/client"

	"github.com/workspaced/workspaced/workspace"
)

func TestTransportOnlyReachesAgentSockets(t *testing.T) {
	t.Parallel()
	r, err := New(&client.Client{}, Options{Image: "img", SocketBasePath: "/var/run/workspace-sockets"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		endpoint string
		ok       bool
	}{
		{"agent socket", "unix:///var/run/workspace-sockets/tok-1/agent.sock", true},
		{"unclean but inside", "unix:///var/run/workspace-sockets/./tok-1/agent.sock", true},
		{"docker socket", "unix:///var/run/docker.sock", false},
		{"proxy socket", "unix:///var/run/workspace-sockets/tok-1/proxy.sock", false},
		{"traversal", "unix:///var/run/workspace-sockets/../docker/agent.sock", false},
		{"nested", "unix:///var/run/workspace-sockets/a/b/agent.sock", false},
		{"invalid token dir", "unix:///var/run/workspace-sockets/-x/agent.sock", false},
		{"base itself", "unix:///var/run/workspace-sockets/agent.sock", false},
		{"tcp", "http://10.0.0.1:9000", false},
		{"empty", "", false},
		{"relative", "unix://var/run/workspace-sockets/tok/agent.sock", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := r.Transport(tc.endpoint)
			if tc.ok != (err == nil) {
				t.Fatalf("Transport(%q) = %v, want ok=%v", tc.endpoint, err, tc.ok)
			}
			if err != nil && !errors.Is(err, workspace.ErrInvalidSpec) {
				t.Errorf("error %v does not wrap ErrInvalidSpec", err)
			}
		})
	}
}

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no image", Options{}, "Image is required"},
		{"relative base", Options{Image: "i", SocketBasePath: "sockets"}, "not absolute"},
		{"reserved label", Options{Image: "i", Labels: map[string]string{"io.workspaced.token": "x"}}, "reserved"},
		{"negative limit", Options{Image: "i", PidsLimit: -1}, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(&client.Client{}, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error about %q", err, tc.want)
			}
		})
	}
	if _, err := New(nil, Options{Image: "i"}); err == nil {
		t.Error("New(nil engine) succeeded")
	}
}

func TestStartRejectsTooLongSocketPaths(t *testing.T) {
	t.Parallel()
	r, err := New(&client.Client{}, Options{Image: "img", SocketBasePath: "/" + strings.Repeat("d", 60)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Start(t.Context(), workspace.StartSpec{Token: strings.Repeat("t", 64)})
	if !errors.Is(err, workspace.ErrInvalidSpec) {
		t.Fatalf("Start = %v, want ErrInvalidSpec for a socket path over 107 bytes", err)
	}
}
