package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
)

// SocketUID and SocketGID own each workspace socket when workspaced runs as
// root: the workspace user (1000:1000) must connect to it.
const (
	SocketUID  = 1000
	SocketGID  = 1000
	SocketMode = 0o660
)

// Open starts serving workspace key on a new Unix socket at socketPath
// (host mode). The socket is created mode 0660 and, when the process runs
// as root, owned by 1000:1000 so the workspace user can connect; running
// unprivileged, it keeps the process's owner and the directory's group must
// let uid 1000 in (see docs/security.md). A stale socket file at the path
// is replaced. Open returns once the socket accepts connections.
func (p *Proxy) Open(ctx context.Context, key, socketPath string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	ws := p.workspaceLocked(key)
	if ws.ln != nil {
		p.mu.Unlock()
		return fmt.Errorf("open %s: %w", key, ErrAlreadyOpen)
	}
	p.mu.Unlock()

	if fi, err := os.Lstat(socketPath); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("open proxy socket %s: a non-socket file is in the way", socketPath)
		}
		_ = os.Remove(socketPath)
	}
	ln, err := net.Listen("unix", socketPath)
	if err != nil {
		return fmt.Errorf("open proxy socket %s: %w", socketPath, err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(true)
	}
	if err := os.Chmod(socketPath, SocketMode); err != nil {
		_ = ln.Close()
		return fmt.Errorf("chmod proxy socket: %w", err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(socketPath, SocketUID, SocketGID); err != nil {
			_ = ln.Close()
			return fmt.Errorf("chown proxy socket: %w", err)
		}
	}
	p.mu.Lock()
	if p.closed || ws.ln != nil {
		p.mu.Unlock()
		_ = ln.Close()
		if p.closed {
			return ErrClosed
		}
		return fmt.Errorf("open %s: %w", key, ErrAlreadyOpen)
	}
	ws.ln, ws.path = ln, socketPath
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		if err := p.serve(ln, ws); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			p.log.Error("proxy listener stopped", "workspace", key, "err", err)
		}
	}()
	p.log.Info("proxy socket open", "workspace", key, "socket", socketPath)
	return nil
}

// Close stops serving workspace key: its listener, every open connection
// and tunnel, and its rules. Closing an unknown or already closed key is
// not an error (idempotent, like stopping a workspace).
func (p *Proxy) Close(key string) error {
	p.mu.Lock()
	ws, ok := p.workspaces[key]
	if ok && key != "" {
		delete(p.workspaces, key)
	}
	p.mu.Unlock()
	if !ok {
		return nil
	}
	var err error
	if ws.ln != nil {
		if cerr := ws.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = fmt.Errorf("close proxy socket %s: %w", ws.path, cerr)
		}
	}
	ws.closeConns()
	p.log.Info("proxy socket closed", "workspace", key)
	return err
}
