package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/workspaced/workspaced/agent/api"
	"github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/sse"
	"github.com/workspaced/workspaced/store"
)

// RunStore is what the API keeps of runs: their records and event logs
// (the store's Runs view) and their relay leases (its Leases view).
type RunStore interface {
	CreateRun(ctx context.Context, r store.Run) error
	BeginRun(ctx context.Context, b store.RunBegin) (store.RunBegun, error)
	StartRun(ctx context.Context, rid, wid, endpoint string, base int64) error
	SeenRun(ctx context.Context, rid string) error
	CancelRun(ctx context.Context, rid string) error
	EndRun(ctx context.Context, r store.Run, ttl time.Duration) error
	GetRun(ctx context.Context, rid string) (store.Run, error)
	ConversationRuns(ctx context.Context, cid string, limit int) ([]store.Run, error)
	ActiveRuns(ctx context.Context) ([]string, error)
	AppendRunEvents(ctx context.Context, rid string, evs []store.RunEvent, maxLen int64) error
	RunLogBounds(ctx context.Context, rid string) (first, last int64, err error)
	RunEvents(ctx context.Context, rid string, after, count int64) ([]store.RunEvent, error)
	WaitRunEvents(ctx context.Context, rid string, after, count int64, block time.Duration) ([]store.RunEvent, error)
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) (bool, error)
}

// Run event types the API adds to the agent's (see docs/runs.md).
const (
	eventRun    = "run"    // the first event: {"run_id", "conversation_id"}
	eventStatus = "status" // waiting, queued, provisioning, ready
	eventError  = "error"  // a final error (errorBody)
)

// Final error codes of runs.
const (
	codeRunLost    = "run_lost"
	codeLogTrimmed = "run_log_trimmed"
)

// RunIDHeader names the run in the execute response.
const RunIDHeader = "Workspaced-Run-Id"

// onDisconnectCancel is the execute field's value that ends the run with
// its client (the behaviour before runs were detached).
const onDisconnectCancel = "cancel"

// Why a driver stopped relaying without ending the run.
var (
	errHandoff   = errors.New("relay handed off: this replica is draining")
	errLeaseLost = errors.New("relay lease lost to another replica")
	errCancelled = errors.New("run cancelled")
)

// runEventData is the data of the first event of a run.
type runEventData struct {
	RunID          string `json:"run_id"`
	ConversationID string `json:"conversation_id"`
}

// isFinal reports whether an event of that type ends a run's stream.
func isFinal(event string) bool { return event == api.EventDone || event == eventError }

// runLeaseName is the relay lease of run rid.
func runLeaseName(rid string) string { return "run:" + rid }

// runDriver relays one run on this replica: from the request (or from a
// takeover) to its final event. Every event it emits gets the next id,
// goes to the attached client stream if there is one, and is appended to
// the run's log in Redis, where followers on any replica read it. It
// holds the run's relay lease while it relays; losing it, or the
// replica draining, stops it without ending the run (another replica
// resumes from the agent after the last stored event).
type runDriver struct {
	s   *Server
	run store.Run
	app *appender

	ctx    context.Context
	cancel context.CancelCauseFunc
	unlink func() bool // stops s.bg's cancelling ctx

	mu      sync.Mutex
	seq     int64 // id of the last event emitted
	base    int64 // ids before the agent's first event (set at start)
	started bool  // the agent has the run
	cl      *client.Client
	// guard ends the agent's stream when it falls silent (liveness.go);
	// conv is the conversation as bound when the run started. Set before
	// the agent gets the run; nil on a driver that took a run over.
	guard   *silenceGuard
	conv    store.Conversation
	sink    *stream // the execute request's stream, while attached
	ended   bool    // the final event was emitted
	outcome string  // "done" or the final error's code; "" if handed off
	sinkEnd chan struct{}
	// hot is what BeginRun found when it recorded the run started on the
	// binding (base 1), nil if it did not; logged is the last event id
	// already in the log from there (the appender skips it).
	hot    *store.RunBegun
	logged int64
	turn   func() // releases the conversation's turn (once, by releaseTurnLocked)

	finished chan struct{} // closed when the driver is gone
}

// newDriver registers a driver for run r, relaying from event id seq on,
// if this replica does not relay it already. Its context has parent's
// values (the request's correlation ID), not its cancellation.
func (s *Server) newDriver(parent context.Context, r store.Run, seq int64) (*runDriver, bool) {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
	unlink := context.AfterFunc(s.bg, func() { cancel(errShuttingDown) })
	d := &runDriver{s: s, run: r, seq: seq, base: r.Base, ctx: ctx, cancel: cancel, unlink: unlink,
		sinkEnd: make(chan struct{}), finished: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.drivers[r.ID]; dup || s.aborted {
		cancel(nil)
		return nil, false
	}
	s.drivers[r.ID] = d
	s.driverWG.Add(1)
	d.app = newAppender(r.ID, s.opts.Store, s.opts.RunLogMaxEvents, s.log)
	return d, true
}

// go runs body as the driver's life: the lease is renewed around it, and
// afterwards the log is flushed, the lease released and the driver
// unregistered.
func (d *runDriver) goRun(body func(ctx context.Context)) {
	go func() {
		defer d.s.driverWG.Done()
		defer close(d.finished)
		stopKeeping := d.keep()
		body(d.ctx)
		d.cancel(nil)
		d.unlink()
		stopKeeping()
		d.app.close()
		d.endSink(!d.hasEnded())
		if d.hasEnded() {
			d.s.metrics.outcomes.WithLabelValues(d.outcome).Inc()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := d.s.opts.Store.ReleaseLease(ctx, runLeaseName(d.run.ID), d.s.replica); err != nil {
			d.s.log.Warn("run lease not released; it expires", "run", d.run.ID, "err", err)
		}
		d.s.mu.Lock()
		delete(d.s.drivers, d.run.ID)
		d.s.mu.Unlock()
	}()
}

// discard unregisters a driver that was never run (its run could not be
// recorded): what newDriver set up is undone.
func (d *runDriver) discard() {
	d.cancel(nil)
	d.unlink()
	d.app.close()
	d.s.mu.Lock()
	delete(d.s.drivers, d.run.ID)
	d.s.mu.Unlock()
	d.s.driverWG.Done()
}

// keep renews the relay lease (and, while the agent runs, the workspace's
// stream lease that spares it from idle GC), records that an attached
// client is there, and applies a requested cancel and the detached TTL,
// every third of the lease's TTL until the driver's context ends. A
// timer's function does it, not a goroutine: a driver lives as long as
// its run (D38). stop ends the renewals, waits for one under way and
// drops the stream lease.
func (d *runDriver) keep() (stop func()) {
	k := &keeper{d: d, every: d.s.opts.RunLeaseTTL / 3, streamLease: d.s.opts.NewID()}
	k.mu.Lock()
	k.timer = time.AfterFunc(k.every, k.renew)
	k.mu.Unlock()
	return k.stop
}

// keeper is the state of a driver's renewals.
type keeper struct {
	d           *runDriver
	every       time.Duration
	streamLease string

	mu      sync.Mutex // held by a renewal
	timer   *time.Timer
	stopped bool
	held    string // the workspace whose stream lease is held
}

func (k *keeper) stop() {
	k.mu.Lock()
	k.stopped = true
	k.timer.Stop()
	held := k.held
	k.mu.Unlock()
	if held != "" {
		k.d.s.dropLease(held, k.streamLease)
	}
}

// renew is one round of keep; it sets the next unless the driver's
// context ended or the lease was lost.
func (k *keeper) renew() {
	k.mu.Lock()
	defer k.mu.Unlock()
	d := k.d
	if k.stopped || d.ctx.Err() != nil {
		return
	}
	start, ttl := time.Now(), d.s.opts.RunLeaseTTL
	ctx, cancel := context.WithTimeout(d.ctx, k.every)
	defer cancel()
	ok, err := d.s.opts.Store.AcquireLease(ctx, runLeaseName(d.run.ID), d.s.replica, ttl)
	if err == nil && !ok {
		d.s.log.Warn("run relay lease lost", "run", d.run.ID)
		d.cancel(errLeaseLost)
		return
	}
	d.mu.Lock()
	attached, started, wid := d.sink != nil, d.started, d.run.Workspace
	d.mu.Unlock()
	if started && wid != "" && d.heard() {
		if _, err := d.s.opts.Store.StreamStarted(ctx, wid, k.streamLease, d.s.opts.StreamLease); err == nil {
			k.held = wid
		}
	}
	if attached {
		_ = d.s.opts.Store.SeenRun(ctx, d.run.ID)
	} else if r, err := d.s.opts.Store.GetRun(ctx, d.run.ID); err == nil {
		switch {
		case r.Cancel:
			d.cancelRun("cancel requested")
		case d.s.opts.Now().Sub(r.Seen) > d.s.opts.RunDetachedTTL:
			d.cancelRun("no client for RUN_DETACHED_TTL")
		}
	}
	k.timer.Reset(max(k.every-time.Since(start), 0)) // a ticker's period
}

// cancelRun ends the run: the agent kills its process group (its final
// event says so), or, before the agent has it, the driver stops waiting
// and ends it with a final "cancelled" error.
func (d *runDriver) cancelRun(why string) {
	d.mu.Lock()
	started, cl := d.started, d.cl
	d.mu.Unlock()
	d.s.log.Info("cancelling run", "run", d.run.ID, "why", why)
	if !started {
		d.cancel(errCancelled)
		return
	}
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	if err := cl.Cancel(ctx, d.run.ID); err != nil && d.ctx.Err() == nil {
		d.s.log.Warn("run not cancelled in the agent", "run", d.run.ID, "err", err)
	}
}

func (d *runDriver) hasEnded() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ended
}

// emit sends one event with the next id. A client stream that fails is
// detached; the run goes on.
func (d *runDriver) emit(event, data string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.emitLocked(d.seq+1, event, data)
}

func (d *runDriver) emitLocked(id int64, event, data string) {
	d.emitToLocked(id, event, data, false)
}

// emitToLocked emits one event; buffered (the relay's events but the
// final one) leaves it unflushed for flushSinkLocked.
func (d *runDriver) emitToLocked(id int64, event, data string, buffered bool) {
	d.seq = id
	if id > d.logged {
		d.app.add(store.RunEvent{ID: id, Event: event, Data: data})
	}
	if d.sink != nil {
		ev := sse.Event{ID: strconv.FormatInt(id, 10), Event: event, Data: data}
		write := d.sink.write
		if buffered && !isFinal(event) {
			write = d.sink.buffer
		}
		if write(ev) != nil {
			d.detachLocked()
		}
	}
	if isFinal(event) {
		d.ended = true
		// The client waits for nothing after the final event (D36): its
		// stream ends now and the conversation's next request may start;
		// the log's last batch, the run's end and the lease's release are
		// written afterwards by the driver.
		d.detachLocked()
		d.releaseTurnLocked()
	}
}

// releaseTurnLocked gives the conversation's turn to its next request, once.
func (d *runDriver) releaseTurnLocked() {
	if d.turn != nil {
		d.turn()
		d.turn = nil
	}
}

// sendJSON emits a status event (the eventSink of waitTurn, awaitReady
// and startAgent).
func (d *runDriver) sendJSON(event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	d.emit(event, string(b))
	return nil
}

// fail emits the final error event and records the run failed. A driver
// that lost its lease emits nothing: the run is another replica's.
func (d *runDriver) fail(e *streamError) {
	if errors.Is(context.Cause(d.ctx), errLeaseLost) {
		return
	}
	d.mu.Lock()
	d.outcome = e.code
	d.mu.Unlock()
	_ = d.sendJSON(eventError, errorBody{errorDetail{e.code, e.msg}})
	d.end(store.RunFailed, e.code, 0)
}

// attach makes st receive the events emitted from now on.
func (d *runDriver) attach(st *stream) {
	d.mu.Lock()
	d.sink = st
	d.mu.Unlock()
}

// detach stops writing to the attached stream (its client is gone).
func (d *runDriver) detach() {
	d.mu.Lock()
	d.detachLocked()
	d.mu.Unlock()
}

func (d *runDriver) detachLocked() {
	if d.sink != nil {
		d.sink = nil
		close(d.sinkEnd)
	}
}

// endSink ends the attached stream: after the final event as it is; when
// the driver stops without one, with a retry hint (the client reconnects
// to GET .../events and another replica relays).
func (d *runDriver) endSink(handoff bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sink != nil && handoff {
		_ = d.sink.retry(d.s.opts.RetryHint)
	}
	d.detachLocked()
}

// serveRequest is a run from an execute request: wait for this
// conversation's turn and a ready workspace, start the run in the agent,
// relay it.
func (d *runDriver) serveRequest(ctx context.Context, conv store.Conversation, req api.ExecuteRequest) {
	s := d.s
	d.mu.Lock()
	before := d.seq
	d.mu.Unlock()
	release, fail := s.waitTurn(ctx, d, conv.ID)
	if fail != nil {
		d.fail(d.why(ctx, fail))
		return
	}
	d.mu.Lock()
	d.turn = release
	waited := d.seq != before // a "waiting" status: another run went first
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.releaseTurnLocked()
		d.mu.Unlock()
	}()
	if waited {
		// The binding read with the claim may have changed meanwhile.
		if fresh, err := s.opts.Store.Conversation(ctx, conv.ID); err == nil {
			conv = fresh
		}
	}
	bound := conv.State == store.StateReady && conv.Endpoint != ""
	conv, fail = s.awaitReady(ctx, d, conv)
	if fail == nil && bound {
		conv, fail = s.replaceIfHung(ctx, d, conv)
	}
	d.mu.Lock()
	// BeginRun recorded the run started on this binding after event 1
	// already, nothing emitted since: nothing more to store before the
	// agent gets it.
	started := d.hot != nil && d.seq == d.logged &&
		d.hot.Conversation.Workspace == conv.Workspace && d.hot.Conversation.Endpoint == conv.Endpoint
	d.mu.Unlock()
	if fail == nil && !(started && d.hot.RulesHeld) {
		fail = s.syncRules(ctx, conv)
	}
	if fail != nil {
		d.fail(d.why(ctx, fail))
		return
	}
	rt, err := s.opts.Transports.Transport(conv.Endpoint)
	if err != nil {
		s.log.Error("no transport to workspace", "conversation", conv.ID, "workspace", conv.Workspace, "err", err)
		d.fail(&streamError{codeUpstream, "workspace endpoint unusable"})
		return
	}
	// Everything before the agent's first event is stored before the agent
	// gets the run: a replica that takes over numbers the agent's events
	// from base, and finds the ids below it in the log.
	d.guard = s.guardSilence(rt)
	d.conv = conv
	d.mu.Lock()
	base := d.seq
	d.base, d.cl = base, client.New(d.guard)
	d.run.Workspace, d.run.Endpoint = conv.Workspace, conv.Endpoint
	started = started && base == d.logged
	d.mu.Unlock()
	if !started {
		d.app.flush(ctx)
		if err := s.opts.Store.StartRun(ctx, d.run.ID, conv.Workspace, conv.Endpoint, base); err != nil {
			d.fail(d.why(ctx, &streamError{codeUnavailable, "internal error while starting the run"}))
			return
		}
	}
	up, err := s.startAgent(ctx, d.waitForAgent, d.cl, d.run.ID, req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			d.fail(d.why(ctx, s.ended(ctx, err)))
		case errors.Is(err, client.ErrBusy):
			d.fail(&streamError{codeBusy, "the workspace is running another request of this conversation"})
		case d.guard.tripped.Load():
			d.fail(s.lostMidRun(ctx, conv))
		default:
			s.log.Warn("workspace unreachable", "conversation", conv.ID, "workspace", conv.Workspace, "err", err)
			d.fail(&streamError{codeUpstream, "workspace did not accept the request"})
		}
		return
	}
	d.mu.Lock()
	d.started = true
	d.mu.Unlock()
	if s.isDraining() {
		d.cancel(errHandoff) // the agent has it; a replica that stays relays it
	}
	d.relay(ctx, up)
}

// waitForAgent tells the client that the agent is busy (a "waiting"
// status) when it refused the run. That event takes an id after the base
// stored at start, so the base moves past it and is stored again: the
// agent holds no event of this run yet (it refused it), so nothing was
// numbered from the old base, and the agent's first event cannot reuse the
// status event's id.
func (d *runDriver) waitForAgent() error {
	_ = d.sendJSON("status", statusEvent{State: "waiting"})
	d.mu.Lock()
	base := d.seq
	d.base = base
	d.mu.Unlock()
	d.app.flush(d.ctx)
	if err := d.s.opts.Store.StartRun(d.ctx, d.run.ID, d.run.Workspace, d.run.Endpoint, base); err != nil {
		return fmt.Errorf("store the run's base after waiting: %w", err)
	}
	return nil
}

// why turns a failure of a wait into the final error, naming a cancel.
func (d *runDriver) why(ctx context.Context, e *streamError) *streamError {
	if errors.Is(context.Cause(ctx), errCancelled) {
		return &streamError{codeCancelled, "run cancelled"}
	}
	return e
}

// resume takes over a running run whose relayer is gone: it reads the
// agent's events after the last one stored and relays them.
func (d *runDriver) resume(ctx context.Context) {
	rt, err := d.s.opts.Transports.Transport(d.run.Endpoint)
	if err != nil {
		d.fail(&streamError{codeUpstream, "workspace endpoint unusable"})
		return
	}
	d.mu.Lock()
	d.cl, d.started = client.New(rt), true
	d.mu.Unlock()
	d.s.log.Info("run relay taken over", "run", d.run.ID, "conversation", d.run.Conversation, "after", d.seq)
	d.relay(ctx, nil)
}

// Bounds of re-reading the agent after its stream broke.
const (
	resumeAttempts = 5
	resumeMinWait  = 100 * time.Millisecond
)

// relay passes the agent's events on until the final one, re-reading the
// agent's log after the last event relayed whenever the stream breaks
// (up is nil: start by reading it).
func (d *runDriver) relay(ctx context.Context, up *client.Stream) {
	s := d.s
	wait := resumeMinWait
	for attempt := 0; ; {
		if up == nil {
			d.mu.Lock()
			after := d.seq - d.base
			d.mu.Unlock()
			var err error
			up, err = d.cl.Events(ctx, d.run.ID, max(after, 0))
			switch {
			case ctx.Err() != nil:
				d.stopped(ctx)
				return
			case errors.Is(err, client.ErrNoRun):
				d.fail(&streamError{codeRunLost, "the workspace does not know the run any more (it never started there, or the workspace was replaced)"})
				return
			case errors.Is(err, client.ErrTrimmed):
				d.fail(&streamError{codeLogTrimmed, "the workspace no longer holds the run's events after the last one stored"})
				return
			case d.silent():
				d.fail(s.lostMidRun(ctx, d.conv))
				return
			case err != nil:
				attempt++
				if attempt >= resumeAttempts {
					s.log.Warn("workspace stream lost", "run", d.run.ID, "workspace", d.run.Workspace, "err", err)
					d.fail(&streamError{codeNoWorkspace, "the workspace went away during the run (its stream ended without a final event, and its agent cannot be read again)"})
					return
				}
				if !sleepCtx(ctx, wait) {
					d.stopped(ctx)
					return
				}
				wait *= 2
				continue
			}
		}
		d.mu.Lock()
		before := d.seq
		d.mu.Unlock()
		final, err := d.pump(ctx, up)
		up.Close()
		up = nil
		if final {
			return
		}
		d.mu.Lock()
		if d.seq > before {
			attempt, wait = 0, resumeMinWait // it moved on: count breaks in a row only
		}
		d.mu.Unlock()
		if ctx.Err() != nil {
			d.stopped(ctx)
			return
		}
		if d.silent() {
			d.fail(s.lostMidRun(ctx, d.conv))
			return
		}
		if err != nil && !errors.Is(err, io.EOF) {
			s.log.Info("workspace stream broke; reading the agent's log again", "run", d.run.ID, "err", err)
		}
		if attempt++; attempt >= resumeAttempts {
			d.fail(&streamError{codeNoWorkspace, "the workspace went away during the run (its stream ended without a final event, and its agent cannot be read again)"})
			return
		}
	}
}

// pump relays up's events, numbered base+n, skipping any already relayed.
// final is true once the agent's final event was relayed.
func (d *runDriver) pump(ctx context.Context, up *client.Stream) (final bool, err error) {
	stop := context.AfterFunc(ctx, func() { up.Close() })
	defer stop()
	// Coalesce: relayed events are written unflushed and flushed when the
	// agent's stream has nothing more buffered, just before the next read
	// that may wait (D33).
	var tally relayTally
	up.BeforeRead(func() {
		d.flushSink()
		tally.publish(d.s.metrics)
	})
	defer func() {
		d.flushSink()
		tally.publish(d.s.metrics)
	}()
	for {
		ev, err := up.Next()
		if err != nil {
			return false, err
		}
		n, perr := api.ParseEventID(ev.ID)
		if perr != nil || n == 0 {
			return false, perr
		}
		d.mu.Lock()
		id := d.base + n
		if id > d.seq {
			d.emitToLocked(id, ev.Event, ev.Data, true)
			if ev.Event == api.EventDone {
				d.outcome = "done"
			}
		}
		d.mu.Unlock()
		tally.add(ev.Event, len(ev.Data))
		if ev.Event == api.EventDone {
			d.finish(up.Done())
			return true, nil
		}
	}
}

// flushSink flushes the relayed events the client stream has buffered; a
// stream that fails is detached (the run goes on).
func (d *runDriver) flushSink() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sink != nil && d.sink.flush() != nil {
		d.detachLocked()
	}
}

// finish records the run done after the agent's final event.
func (d *runDriver) finish(done *api.Done) {
	code := 0
	if done != nil {
		code = done.ExitCode
	}
	d.end(store.RunDone, "", code)
}

// end records the run's end once its final event is stored: followers
// that see the run ended have the final event in the log.
func (d *runDriver) end(state store.RunState, errCode string, exitCode int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.app.flush(ctx)
	r := d.run
	r.State, r.Error, r.ExitCode = state, errCode, exitCode
	if err := d.s.opts.Store.EndRun(ctx, r, d.s.opts.RunLogTTL); err != nil {
		d.s.log.Warn("run end not recorded", "run", r.ID, "err", err)
	}
}

// stopped handles the driver's context ending while the agent runs: a
// cancel or a lost lease or a handoff leave the run to the agent (and to
// the next relayer); only the server's abort before the agent had it ends
// it.
func (d *runDriver) stopped(ctx context.Context) {
	cause := context.Cause(ctx)
	d.s.log.Info("run relay stopped", "run", d.run.ID, "cause", cause)
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
