package agent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/workspaced/workspaced/agent"
)

// fakeProxy is a Unix socket server standing in for the credential proxy:
// it answers each line with "echo: <line>" and reports when a connection
// reads EOF.
type fakeProxy struct {
	path  string
	eof   chan struct{}
	conns chan net.Conn
}

func startFakeProxy(t *testing.T) *fakeProxy {
	t.Helper()
	p := &fakeProxy{
		path:  filepath.Join(shortTempDir(t), "proxy.sock"),
		eof:   make(chan struct{}, 64),
		conns: make(chan net.Conn, 64),
	}
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns <- c
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if _, err := fmt.Fprintf(c, "echo: %s\n", sc.Text()); err != nil {
						return
					}
				}
				if sc.Err() == nil {
					p.eof <- struct{}{}
				}
			}()
		}
	}()
	return p
}

func startForwarder(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	f := &agent.Forwarder{Target: target, Logger: testLogger(t)}
	go func() { done <- f.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Forwarder.Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func TestForwarderCarriesBytesBothWays(t *testing.T) {
	t.Parallel()
	p := startFakeProxy(t)
	addr := startForwarder(t, p.path)
	const conns = 8
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- exchange(addr, i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// exchange sends a few lines on one connection and checks the answers.
func exchange(addr string, n int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for j := range 5 {
		msg := fmt.Sprintf("conn %d line %d", n, j)
		if _, err := fmt.Fprintln(c, msg); err != nil {
			return err
		}
		got, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("conn %d: read: %w", n, err)
		}
		if want := "echo: " + msg + "\n"; got != want {
			return fmt.Errorf("conn %d: got %q, want %q", n, got, want)
		}
	}
	return nil
}

func TestForwarderClientCloseReachesProxy(t *testing.T) {
	t.Parallel()
	p := startFakeProxy(t)
	addr := startForwarder(t, p.path)
	if err := exchange(addr, 0); err != nil { // exchange closes its connection
		t.Fatal(err)
	}
	select {
	case <-p.eof:
	case <-testContext(t).Done():
		t.Fatal("the proxy side never saw the client's close")
	}
}

func TestForwarderProxyCloseReachesClient(t *testing.T) {
	t.Parallel()
	p := startFakeProxy(t)
	addr := startForwarder(t, p.path)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintln(c, "hi"); err != nil {
		t.Fatal(err)
	}
	var up net.Conn
	select {
	case up = <-p.conns:
	case <-testContext(t).Done():
		t.Fatal("no connection reached the proxy")
	}
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	_ = up.Close()
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("client read after the proxy closed = %v, want EOF", err)
	}
}

func TestForwarderWithoutProxyClosesClient(t *testing.T) {
	t.Parallel()
	addr := startForwarder(t, filepath.Join(shortTempDir(t), "missing.sock"))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read succeeded with no proxy behind the forwarder")
	}
}
