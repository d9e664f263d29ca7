package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"golang.org/x/sync/singleflight"

	"github.com/workspaced/workspaced/workspace"
)

// startTimeout bounds one collapsed Start (create, start, proxy) once it
// runs detached from the callers' contexts.
const startTimeout = 2 * time.Minute

var _ workspace.Runtime = (*Runtime)(nil)

// Runtime runs workspaces as containers of one Docker engine. It is safe for
// concurrent use.
type Runtime struct {
	engine Engine
	opts   Options
	log    *slog.Logger
	starts singleflight.Group
	admit  *admission
	// queued holds the tokens whose start waits for admission (value
	// struct{}{}) or was admitted after waiting (value: when).
	queued sync.Map

	mu     sync.Mutex
	opened map[string]bool // tokens whose proxy listener this Runtime opened
	// closed and starting: the shared start attempts outlive their callers
	// (see Start); Close waits for them, and none begins after it.
	closed   bool
	starting sync.WaitGroup

	// transports holds one pooled transport per agent socket, so relays
	// and health checks reuse connections; dropped when the workspace's
	// host side is released.
	transports sync.Map // socket path → *http.Transport
}

// New returns a Runtime that drives engine. It validates opts (Image is
// required) and fills defaults; it does not contact the engine.
func New(engine Engine, opts Options) (*Runtime, error) {
	if engine == nil {
		return nil, errors.New("docker runtime: nil engine")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Runtime{engine: engine, opts: opts, log: opts.Logger.With("component", "runtime_docker"), opened: map[string]bool{},
		admit: &admission{n: opts.StartConcurrency}}, nil
}

// Start starts the workspace for spec, idempotently by spec.Token: the token
// names the container, so a second Start (here, in another process, or
// after a crash between create and start) finds the first one and returns
// it. Concurrent Starts of one token in this process share one attempt.
// The result may still be PENDING; readiness arrives as a task-state event
// (or use WaitReady). An invalid token wraps workspace.ErrInvalidSpec; a
// missing image is workspace.Terminal.
func (r *Runtime) Start(ctx context.Context, spec workspace.StartSpec) (workspace.Info, error) {
	if err := workspace.ValidToken(spec.Token); err != nil {
		return workspace.Info{}, fmt.Errorf("start workspace: %w", err)
	}
	if p := r.agentSocket(spec.Token); len(p) > maxSocketPath {
		return workspace.Info{}, fmt.Errorf("start workspace %s: %w: socket path %s is longer than %d bytes", spec.Token, workspace.ErrInvalidSpec, p, maxSocketPath)
	}
	// The shared attempt outlives any one caller: a caller that gives up
	// must not fail the others waiting on the same token.
	called := time.Now()
	ch := r.starts.DoChan(spec.Token, func() (any, error) {
		defer r.queued.Delete(spec.Token)
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, fmt.Errorf("start workspace %s: %w", spec.Token, errClosed)
		}
		r.starting.Add(1)
		r.mu.Unlock()
		defer r.starting.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
		defer cancel()
		return r.start(sctx, spec)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return workspace.Info{}, res.Err
		}
		return res.Val.(workspace.Info), nil
	case <-ctx.Done():
		if r.spentQueued(spec.Token, called) {
			return workspace.Info{}, fmt.Errorf("start workspace %s: %w: %w", spec.Token, workspace.ErrStartQueued, ctx.Err())
		}
		return workspace.Info{}, fmt.Errorf("start workspace %s: %w", spec.Token, ctx.Err())
	}
}

// errClosed: Start after Close.
var errClosed = errors.New("docker runtime closed")

// Close waits for the start attempts in flight (each bounded by its start
// timeout) and refuses new ones. A start attempt is shared by its callers
// and outlives them, so without this a process shutting down could leave
// a container created, or started, after it stopped. Call it after the
// callers of Start have returned, before closing the engine client.
func (r *Runtime) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.starting.Wait()
}

// spentQueued reports whether a caller of Start since called spent part of
// its wait queued for admission: its start still waits, or was admitted
// after waiting, after the call. Its deadline then says nothing about how
// long the engine takes.
func (r *Runtime) spentQueued(token string, called time.Time) bool {
	v, ok := r.queued.Load(token)
	if !ok {
		return false
	}
	at, admitted := v.(time.Time)
	return !admitted || at.After(called)
}

func (r *Runtime) start(ctx context.Context, spec workspace.StartSpec) (workspace.Info, error) {
	name := r.opts.NamePrefix + spec.Token
	log := r.log.With("token", spec.Token)
	found, err := r.engine.ContainerInspect(ctx, name)
	switch {
	case err == nil:
		return r.resume(ctx, spec.Token, found)
	case !cerrdefs.IsNotFound(err):
		return workspace.Info{}, fmt.Errorf("start workspace %s: inspect: %w", spec.Token, err)
	}
	r.queued.Store(spec.Token, struct{}{})
	release, waited, err := r.admit.acquire(ctx)
	if waited {
		r.queued.Store(spec.Token, time.Now())
	} else {
		r.queued.Delete(spec.Token)
	}
	if err != nil {
		return workspace.Info{}, fmt.Errorf("start workspace %s: wait for admission: %w", spec.Token, err)
	}
	defer release()
	if err := r.prepare(ctx, spec.Token); err != nil {
		return workspace.Info{}, err
	}
	cfg, host, err := r.containerConfig(spec)
	if err != nil {
		return workspace.Info{}, fmt.Errorf("start workspace %s: %w", spec.Token, err)
	}
	created, existing, err := r.create(ctx, cfg, host, name)
	switch {
	case existing != nil:
		// Another process created it first: that one is the workspace.
		return r.resume(ctx, spec.Token, *existing)
	case cerrdefs.IsNotFound(err):
		r.release(spec.Token)
		return workspace.Info{}, workspace.Terminal(fmt.Errorf("start workspace %s: image %s: %w", spec.Token, r.opts.Image, err))
	case err != nil:
		r.release(spec.Token)
		return workspace.Info{}, fmt.Errorf("start workspace %s: %w", spec.Token, classify(err))
	}
	log.Info("workspace container created", "container_id", created.ID, "conversation", spec.Conversation, "pool", spec.Pool)
	if r.opts.Fault != nil {
		r.opts.Fault("created")
	}
	if err := r.engine.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		r.discard(ctx, created.ID, spec.Token)
		return workspace.Info{}, fmt.Errorf("start workspace %s: start: %w", spec.Token, classify(err))
	}
	return r.Inspect(ctx, created.ID)
}

// create creates the container named name. When the name is taken it
// returns the container holding it instead. The engine reserves a name
// before the container can be inspected, and a creator that fails releases
// it, so a conflict is followed by a few inspect-or-create rounds.
func (r *Runtime) create(ctx context.Context, cfg *container.Config, host *container.HostConfig, name string) (container.CreateResponse, *container.InspectResponse, error) {
	backoff := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		created, err := r.engine.ContainerCreate(ctx, cfg, host, nil, nil, name)
		if !cerrdefs.IsConflict(err) {
			if err != nil {
				err = fmt.Errorf("create: %w", err)
			}
			return created, nil, err
		}
		existing, ierr := r.engine.ContainerInspect(ctx, name)
		if ierr == nil {
			return container.CreateResponse{}, &existing, nil
		}
		if !cerrdefs.IsNotFound(ierr) || attempt == 10 {
			return container.CreateResponse{}, nil, fmt.Errorf("create: name %s taken but not inspectable: %w", name, ierr)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return container.CreateResponse{}, nil, fmt.Errorf("create: %w", ctx.Err())
		case <-t.C:
		}
		backoff *= 2
	}
}

// resume returns an existing workspace container, starting it if a crashed
// attempt left it created but not started, and re-opening its proxy.
func (r *Runtime) resume(ctx context.Context, token string, c container.InspectResponse) (workspace.Info, error) {
	if c.Config == nil || !r.managed(c.Config.Labels) || c.Config.Labels[LabelToken] != token {
		return workspace.Info{}, workspace.Terminal(fmt.Errorf("start workspace %s: %w: container %s exists and is not this workspace", token, workspace.ErrInvalidSpec, c.Name))
	}
	info := r.infoFromInspect(c)
	if info.Status.Stopping() {
		return info, nil
	}
	if err := r.prepare(ctx, token); err != nil {
		return workspace.Info{}, err
	}
	if c.State != nil && c.State.Status == container.StateCreated {
		if err := r.engine.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			return workspace.Info{}, fmt.Errorf("start workspace %s: start existing: %w", token, classify(err))
		}
		return r.Inspect(ctx, c.ID)
	}
	return info, nil
}

// prepare creates token's socket directory (0750, owned by the agent's
// uid:gid) and opens its proxy listener.
func (r *Runtime) prepare(ctx context.Context, token string) error {
	if err := os.MkdirAll(r.opts.SocketBasePath, 0o755); err != nil {
		return fmt.Errorf("start workspace %s: socket base: %w", token, err)
	}
	dir := r.socketDir(token)
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("start workspace %s: socket dir: %w", token, err)
	}
	// Mkdir honours the umask and an existing directory keeps its mode:
	// set both explicitly.
	if err := os.Chmod(dir, 0o750); err != nil {
		return fmt.Errorf("start workspace %s: socket dir: %w", token, err)
	}
	if err := os.Lchown(dir, r.opts.UID, r.opts.GID); err != nil {
		return fmt.Errorf("start workspace %s: socket dir owner: %w", token, err)
	}
	return r.openProxy(ctx, token)
}

// openProxy opens token's proxy listener unless this Runtime already has.
// Starts of one token are serialized (singleflight), so no two calls race
// on one token.
func (r *Runtime) openProxy(ctx context.Context, token string) error {
	if r.opts.Proxy == nil {
		return nil
	}
	if r.isOpen(token) {
		return nil
	}
	if err := r.opts.Proxy.Open(ctx, token, filepath.Join(r.socketDir(token), proxySocketName)); err != nil {
		return fmt.Errorf("start workspace %s: open proxy: %w", token, err)
	}
	r.mu.Lock()
	r.opened[token] = true
	r.mu.Unlock()
	return nil
}

// release undoes prepare: closes the proxy and removes the socket directory.
func (r *Runtime) release(token string) {
	r.dropTransport(token)
	if r.opts.Proxy != nil {
		r.mu.Lock()
		delete(r.opened, token)
		r.mu.Unlock()
		if err := r.opts.Proxy.Close(token); err != nil {
			r.log.Warn("close proxy failed", "token", token, "err", err)
		}
	}
	if err := os.RemoveAll(r.socketDir(token)); err != nil {
		r.log.Warn("remove socket dir failed", "token", token, "err", err)
	}
	if err := r.removeState(token); err != nil {
		r.log.Warn("remove claim record and rules failed", "token", token, "err", err)
	}
}

// discard removes a container whose start failed, and its host resources,
// even when the start was cancelled.
func (r *Runtime) discard(ctx context.Context, id, token string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := r.engine.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		r.log.Warn("remove failed workspace container", "container_id", id, "err", err)
	}
	r.release(token)
}

// classify marks engine errors the workers must not retry forever.
func classify(err error) error {
	switch {
	case cerrdefs.IsInvalidArgument(err):
		return workspace.Terminal(err)
	case cerrdefs.IsResourceExhausted(err):
		return fmt.Errorf("%w: %w", workspace.ErrCapacity, err)
	}
	return err
}
