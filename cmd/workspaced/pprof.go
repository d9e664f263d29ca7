package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofServer serves Go's runtime profiles on a listener of its own
// (PPROF_ADDR), never on the API's: the API is authenticated and public,
// profiles are for operators on a private address.
type pprofServer struct {
	ln  net.Listener
	srv *http.Server
}

// newPprofServer listens on addr and routes /debug/pprof/ on a mux of its
// own (not http.DefaultServeMux).
func newPprofServer(addr string, log *slog.Logger) (*pprofServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on PPROF_ADDR %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &pprofServer{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}, nil
}

// Run serves until ctx ends; profiles in flight are cut off.
func (p *pprofServer) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = p.srv.Close() })
	defer stop()
	if err := p.srv.Serve(p.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve pprof: %w", err)
	}
	return nil
}

// addPprof starts the profile listener when PPROF_ADDR is set.
func (a *App) addPprof() error {
	if a.cfg.HTTP.PprofAddr == "" {
		return nil
	}
	p, err := newPprofServer(a.cfg.HTTP.PprofAddr, a.log)
	if err != nil {
		return err
	}
	a.pprof = p
	a.closers = append(a.closers, func() error {
		if err := p.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("close pprof listener: %w", err)
		}
		return nil
	})
	a.loops = append(a.loops, p.Run)
	a.log.Info("profiles served", "pprof_addr", p.ln.Addr().String())
	return nil
}

// PprofAddr is the profile listener's address, nil when PPROF_ADDR is unset.
func (a *App) PprofAddr() net.Addr {
	if a.pprof == nil {
		return nil
	}
	return a.pprof.ln.Addr()
}
