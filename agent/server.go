package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/workspaced/workspaced/agent/api"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// Server is the workspace agent. Build it with New; it is safe for
// concurrent use.
type Server struct {
	opts    Options
	log     *slog.Logger
	started time.Time
	mux     *http.ServeMux

	// files is held shared while GET /files streams and exclusively while
	// PUT /files swaps the directory's contents.
	files sync.RWMutex

	mu       sync.Mutex
	busy     bool
	idle     chan struct{} // closed while not busy
	stopping chan struct{} // closed when shutdown begins
	stopOnce sync.Once
	lastRun  *runLog // the current or last run (GET /runs/{id}/events)
}

// New returns a Server. With opts.Subreaper it marks the calling process a
// child subreaper.
func New(opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if opts.Subreaper {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("become child subreaper: %w", err)
		}
	}
	idle := make(chan struct{})
	close(idle)
	s := &Server{
		opts:     opts,
		log:      opts.Logger.With("component", "agent"),
		started:  time.Now(),
		idle:     idle,
		stopping: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.handleHealth)
	mux.HandleFunc("POST /execute", s.handleExecute)
	mux.HandleFunc("GET /files", s.handleGetFiles)
	mux.HandleFunc("PUT /files", s.handlePutFiles)
	mux.HandleFunc("GET /runs/{id}/events", s.handleRunEvents)
	mux.HandleFunc("POST /runs/{id}/cancel", s.handleRunCancel)
	mux.HandleFunc("GET /files/{tree}", s.handleGetFiles)
	mux.HandleFunc("PUT /files/{tree}", s.handlePutFiles)
	mux.HandleFunc("GET /files/{tree}/digest", s.handleFilesDigest)
	s.mux = mux
	return s, nil
}

// Handler returns the agent's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// acquire takes the one run slot, or returns api.ErrBusy. The returned function
// releases it.
func (s *Server) acquire() (func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy {
		return nil, api.ErrBusy
	}
	select {
	case <-s.stopping:
		return nil, api.ErrShuttingDown
	default:
	}
	s.busy = true
	s.idle = make(chan struct{})
	idle := s.idle
	return func() {
		s.mu.Lock()
		s.busy = false
		close(idle)
		s.mu.Unlock()
	}, nil
}

// Busy reports whether a run or a file replacement is in progress.
func (s *Server) Busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busy
}

// WaitIdle blocks until no run is in progress (its process group gone and
// its final event written) or ctx ends.
func (s *Server) WaitIdle(ctx context.Context) error {
	s.mu.Lock()
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// beginShutdown makes new runs fail and kills the running one.
func (s *Server) beginShutdown() { s.stopOnce.Do(func() { close(s.stopping) }) }

// Serve serves HTTP on ln until ctx ends, then shuts down: it stops
// accepting, kills the running process group, waits for in-flight
// requests (up to Options.ShutdownTimeout) and closes ln. It returns nil
// after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.beginShutdown()
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	s.beginShutdown()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		s.log.Warn("shutdown incomplete, closing connections", "err", err)
		_ = hs.Close()
	}
	// Shutdown returned: no handler is running. A detached run was
	// cancelled by beginShutdown; wait until its process group is gone.
	if err := s.WaitIdle(sctx); err != nil {
		s.log.Warn("run still ending at shutdown deadline", "err", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// Run listens as Options say (a Unix socket or TCP), forwards the proxy
// port when Options.ProxySocket is set, and serves until ctx ends. It
// returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	ln, err := s.listen()
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if s.opts.ProxySocket != "" {
		fwd := &Forwarder{Target: s.opts.ProxySocket, Logger: s.log}
		fln, err := net.Listen("tcp", s.opts.ProxyListen)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen for proxy forwarding on %s: %w", s.opts.ProxyListen, err)
		}
		g.Go(func() error { return fwd.Serve(gctx, fln) })
	}
	g.Go(func() error { return s.Serve(gctx, ln) })
	s.log.Info("listening", "mode", s.opts.ListenMode, "addr", ln.Addr().String())
	return g.Wait()
}

func (s *Server) listen() (net.Listener, error) {
	switch s.opts.ListenMode {
	case ListenTCP:
		ln, err := net.Listen("tcp", s.opts.TCPAddr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", s.opts.TCPAddr, err)
		}
		return ln, nil
	case ListenUDS:
		return listenUnix(s.opts.SocketPath, DefaultSocketMode)
	default:
		return nil, fmt.Errorf("listen: unknown mode %q (want %q or %q)", s.opts.ListenMode, ListenUDS, ListenTCP)
	}
}

// listenUnix listens on a Unix socket at path with the given mode. The
// socket is created under a temporary name, chmod-ed, then renamed into
// place, so it is never reachable with a wider mode. A stale socket at
// path is replaced.
func listenUnix(path string, mode os.FileMode) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, mode); err != nil {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("place socket: %w", err)
	}
	return &unlinkListener{UnixListener: ln, path: path}, nil
}

// unlinkListener removes its socket file when closed.
type unlinkListener struct {
	*net.UnixListener
	path string
	once sync.Once
}

// Addr reports the socket's final path, not the temporary one it was
// created under.
func (l *unlinkListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *unlinkListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() { _ = os.Remove(l.path) })
	return err
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	h := api.Health{
		Status:  "ok",
		Version: s.opts.Version,
		Busy:    s.Busy(),
		UptimeS: time.Since(s.started).Seconds(),
	}
	select {
	case <-s.stopping:
		h.Status = "stopping"
	default:
	}
	writeJSON(w, http.StatusOK, h)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError maps err to its HTTP status (the one place that does) and
// writes an Error body.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, api.ErrBadRequest), errors.Is(err, api.ErrRefused):
		status = http.StatusBadRequest
	case errors.Is(err, api.ErrBusy):
		status = http.StatusConflict
	case errors.Is(err, api.ErrShuttingDown):
		status = http.StatusServiceUnavailable
	case errors.Is(err, api.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, api.ErrGone):
		status = http.StatusGone
	case errors.Is(err, api.ErrTooLarge), errors.As(err, &mbe):
		status = http.StatusRequestEntityTooLarge
	}
	writeJSON(w, status, api.Error{Error: err.Error()})
}
