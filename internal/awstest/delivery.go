// Package awstest holds test helpers for the in-process AWS emulator
// (kumo) that several packages share: making its EventBridge → SQS
// deliveries arrive, and routing ECS task events with the Terraform rule.
// Tests only.
package awstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// kumo's EventBridge delivers to SQS targets with an HTTP SendMessage to
// http://localhost:4566, or to KUMO_HOST/KUMO_PORT as read in its init()
// (the environment of the test binary at start). An in-process server
// (kumo.NewServer) listens on a random port, so without help every
// delivery fails and the event is lost. EventBridgeDelivery listens on
// that address and forwards to the emulator.

// deliveryAddr is where kumo delivers, computed as kumo's init() does.
func deliveryAddr() (host, port string) {
	host, port = os.Getenv("KUMO_HOST"), os.Getenv("KUMO_PORT")
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "4566"
	}
	return host, port
}

// forwarder is the process's one listener on the delivery address. All
// kumo servers of a process share their state, so forwarding to any live
// one reaches the queues every test sees.
var forwarder struct {
	mu     sync.Mutex
	refs   int
	target *url.URL
	lock   *os.File
	srvs   []*http.Server
}

// lockTimeout bounds waiting for another test binary to release the
// delivery address.
const lockTimeout = 5 * time.Minute

// EventBridgeDelivery makes kumo's EventBridge → SQS deliveries reach the
// emulator at emulatorURL until the test ends. Safe for parallel tests.
//
// Test binaries of other packages may run at the same time and need the
// same fixed address: a lock file in the temp directory serialises them
// (held from the first use in a process to the end of its last user).
// The test fails if the address cannot be had (something else, such as a
// LocalStack, listens there) — under CI that is a real failure, locally
// stop the other listener.
func EventBridgeDelivery(t testing.TB, emulatorURL string) {
	t.Helper()
	target, err := url.Parse(emulatorURL)
	if err != nil {
		t.Fatalf("emulator URL %q: %v", emulatorURL, err)
	}
	forwarder.mu.Lock()
	defer forwarder.mu.Unlock()
	if forwarder.refs == 0 {
		if err := startForwarder(); err != nil {
			t.Fatalf("kumo EventBridge delivery: %v", err)
		}
	}
	forwarder.refs++
	forwarder.target = target
	t.Cleanup(releaseForwarder)
}

func startForwarder() error {
	host, port := deliveryAddr()
	lock, err := acquireLock(filepath.Join(os.TempDir(), "workspaced-kumo-delivery-"+port+".lock"))
	if err != nil {
		return err
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			forwarder.mu.Lock()
			target := forwarder.target
			forwarder.mu.Unlock()
			r.SetURL(target)
		},
	}
	addrs := []string{net.JoinHostPort(host, port)}
	if host == "localhost" {
		// "localhost" may resolve to either loopback; serve both.
		addrs = []string{net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("::1", port)}
	}
	var srvs []*http.Server
	for i, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if i > 0 && host == "localhost" {
				continue // no IPv6 loopback here: IPv4 suffices
			}
			for _, s := range srvs {
				_ = s.Close()
			}
			_ = lock.Close()
			return fmt.Errorf("listen on %s (kumo delivers there): %w", addr, err)
		}
		srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		srvs = append(srvs, srv)
	}
	forwarder.lock, forwarder.srvs = lock, srvs
	return nil
}

func releaseForwarder() {
	forwarder.mu.Lock()
	defer forwarder.mu.Unlock()
	if forwarder.refs--; forwarder.refs > 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range forwarder.srvs {
		_ = s.Shutdown(ctx)
	}
	forwarder.srvs = nil
	_ = forwarder.lock.Close() // releases the flock
	forwarder.lock = nil
}

// acquireLock takes an exclusive flock on path, waiting up to lockTimeout
// for another process to release it.
func acquireLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	timer := time.NewTimer(lockTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		return f, nil
	case <-timer.C:
		_ = f.Close()
		return nil, errors.New("another test binary held " + path + " for " + lockTimeout.String())
	}
}
