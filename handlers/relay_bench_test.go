package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/agent"
	"github.com/workspaced/workspaced/agent/api"
	"github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/events/bus"
	"github.com/workspaced/workspaced/handlers"
	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/internal/testenv"
	"github.com/workspaced/workspaced/sse"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/workspace"
)

// relayLines is how many stdout lines (events) one benchmarked run emits.
const relayLines = 5000

// unixTransport reaches the one agent of the benchmark, pooled like the
// Docker runtime's transports.
type unixTransport struct{ rt http.RoundTripper }

func (u unixTransport) Transport(endpoint string) (http.RoundTripper, error) {
	if !strings.HasPrefix(endpoint, "unix://") {
		return nil, fmt.Errorf("not a unix endpoint: %s", endpoint)
	}
	return u.rt, nil
}

// BenchmarkRelay measures one run of relayLines events end to end, the same
// agent reached three ways in the same process and run:
//
//	direct      the agent client on the agent's Unix socket (the baseline)
//	nginx       through nginx (proxy_buffering off) to the same socket
//	workspaced  through the API: auth, Redis ownership and binding lookup,
//	            per-event parse, renumber, flush
//
// It reports events/s and the time to the first event (ttfe-µs); compare
// the sub-benchmarks of one run (scripts/bench.sh prints the ratios).
func BenchmarkRelay(b *testing.B) {
	dir, err := os.MkdirTemp("", "wsbench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	startAgent(b, dir, sock)
	req := api.ExecuteRequest{Kind: api.KindCommand, Argv: []string{"seq", "1", fmt.Sprint(relayLines)}}
	body := fmt.Sprintf(`{"kind":"command","argv":["seq","1","%d"]}`, relayLines)

	b.Run("direct", func(b *testing.B) {
		rt := client.UnixTransport(sock)
		b.Cleanup(closeIdle(rt))
		cl := client.New(rt)
		benchStream(b, func(ctx context.Context) (io.ReadCloser, error) {
			s, err := cl.Execute(ctx, req)
			if err != nil {
				return nil, err
			}
			return io.NopCloser(s.Body()), nil
		})
	})
	b.Run("nginx", func(b *testing.B) {
		url := startNginx(b, dir, sock)
		hc := &http.Client{Transport: &http.Transport{}}
		b.Cleanup(hc.CloseIdleConnections)
		benchStream(b, func(ctx context.Context) (io.ReadCloser, error) {
			return post(ctx, hc, url+"/execute", "", body)
		})
	})
	b.Run("workspaced", func(b *testing.B) {
		url := startAPI(b, "unix://"+sock)
		hc := &http.Client{Transport: &http.Transport{}}
		b.Cleanup(hc.CloseIdleConnections)
		benchStream(b, func(ctx context.Context) (io.ReadCloser, error) {
			return post(ctx, hc, url+"/v1/conversations/bench/execute", secret(keyA), body)
		})
	})
}

// benchStream runs open b.N times, reads every event, and reports rates.
func benchStream(b *testing.B, open func(context.Context) (io.ReadCloser, error)) {
	ctx := context.Background()
	var ttfe time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		rc, err := open(ctx)
		if err != nil {
			b.Fatal(err)
		}
		rd := sse.NewReader(rc)
		n := 0
		for {
			ev, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if ev.Event == "stdout" {
				if n == 0 {
					ttfe += time.Since(start)
				}
				n++
			}
		}
		rc.Close() // read to EOF: the connection goes back to its pool
		if n != relayLines {
			b.Fatalf("got %d events, want %d", n, relayLines)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*relayLines)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(ttfe.Microseconds())/float64(b.N), "ttfe-µs")
}

// closeIdle closes rt's idle connections (goleak checks for their readers).
func closeIdle(rt http.RoundTripper) func() {
	return func() {
		if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}

func post(ctx context.Context, hc *http.Client, url, key, body string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, errors.New(resp.Status)
	}
	return resp.Body, nil
}

// startAgent serves a real agent on sock, running commands in dir.
func startAgent(b testing.TB, dir, sock string) {
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		b.Fatal(err)
	}
	srv, err := agent.New(agent.Options{WorkDir: work, Path: os.Getenv("PATH"), Heartbeat: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	b.Cleanup(func() { cancel(); <-done })
}

// startAPI runs the API on a real Redis with the conversation "bench"
// owned by keyA and bound, ready, to the agent at endpoint.
func startAPI(b testing.TB, endpoint string) string {
	ctx := context.Background()
	st := store.New(redistest.NewClient(b), store.Options{Prefix: "bench:"})
	keys, err := handlers.ParseKeys(keyA, nil)
	if err != nil {
		b.Fatal(err)
	}
	p, _ := keys.Lookup(secret(keyA))
	if _, err := st.ClaimConversation(ctx, "bench", p.Owner, p.Tenant); err != nil {
		b.Fatal(err)
	}
	info := workspace.Info{ID: "ws-bench", Token: "c-bench", Endpoint: endpoint, Status: workspace.StatusRunning}
	if _, err := st.BindProvisioning(ctx, store.Binding{Conversation: "bench", Workspace: info}); err != nil {
		b.Fatal(err)
	}
	if _, err := st.ApplyTaskState(ctx, store.TaskState{Workspace: info.ID, Status: workspace.StatusRunning, Version: 1}); err != nil {
		b.Fatal(err)
	}
	if _, err := st.MarkReady(ctx, info.ID, endpoint); err != nil {
		b.Fatal(err)
	}
	bs, err := bus.New(ctx, bus.Options{Kind: bus.KindGoChannel, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bs.Close() })
	rt := client.UnixTransport(strings.TrimPrefix(endpoint, "unix://"))
	b.Cleanup(closeIdle(rt))
	srv, err := handlers.New(handlers.Options{Store: apiStore{st}, Commands: bs.Commands(), Transports: unixTransport{rt}, Keys: keys,
		Heartbeat: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(func() { stopServer(b, srv) })
	b.Cleanup(hs.Close)
	return hs.URL
}

// userDirective keeps nginx's worker in our uid when we are root (the
// agent socket is not world-accessible); otherwise nginx ignores "user".
func userDirective() string {
	if os.Geteuid() == 0 {
		return "user root;"
	}
	return ""
}

// startNginx runs nginx as a streaming reverse proxy to the agent socket.
func startNginx(b *testing.B, dir, sock string) string {
	bin := testenv.LookPath(b, "nginx")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	prefix := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(filepath.Join(prefix, "logs"), 0o755); err != nil {
		b.Fatal(err)
	}
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
%[4]s
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream agent { server unix:%[2]s; keepalive 4; }
  server {
    listen %[3]s;
    location / {
      proxy_pass http://agent;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 1h;
    }
  }
}
`, prefix, sock, addr, userDirective())
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", confPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "http://" + addr
	// nginx is a child process with no readiness signal: wait for its port.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return url
		}
		if time.Now().After(deadline) {
			b.Fatalf("nginx did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
