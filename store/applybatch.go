package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// applyFlushTimeout bounds one pipelined flush of task-state applies. The
// flush runs on behalf of several callers, so it is detached from the
// cancellation of the caller that happens to run it.
const applyFlushTimeout = 30 * time.Second

// applyCall is one ApplyTaskState waiting for its batch.
type applyCall struct {
	ev   TaskState
	kind string
	res  ApplyResult
	err  error
	done chan struct{}
}

// applyBatcher is a group commit of task-state applies: concurrent
// ApplyTaskState calls are sent to Redis as one apply script per
// maxApplyBatch events, in one pipeline (one write and one read on the
// connection for the whole batch) instead of one round trip each. There is no timer and no background goroutine:
// a caller that finds fewer than maxApplyFlushes flushes running becomes a
// flusher; it sends everything queued, then whatever was queued meanwhile,
// and stops when nothing is left. A lone caller is sent at once (a batch
// of one). One apply script applies the whole batch (up to maxApplyBatch
// events), in order; each event keeps its own compare-and-set on the
// version (which is what makes the order in which concurrent events land
// irrelevant, as it is for the bus's deliveries). A script that fails
// fails every event of its batch; their callers retry (idempotent).
type applyBatcher struct {
	mu       sync.Mutex
	pending  []*applyCall
	flushing int
}

// maxApplyFlushes bounds the pipelines in flight. Measured (make bench)
// on the shared 2-core machine, 3 in flight were no better than 1: the
// server's time in the apply script, not the round trips, is the limit.
const maxApplyFlushes = 1

// do queues c and returns its result when its batch has been applied.
func (b *applyBatcher) do(ctx context.Context, c *applyCall, flush func(context.Context, []*applyCall)) (ApplyResult, error) {
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if b.flushing >= maxApplyFlushes {
		b.mu.Unlock()
		select {
		case <-c.done:
			return c.res, c.err
		case <-ctx.Done():
			// The event may still be applied by the running flush, like a
			// call whose reply was lost; the caller retries (idempotent).
			return ApplyResult{}, fmt.Errorf("apply task state of workspace %s: %w", c.ev.Workspace, ctx.Err())
		}
	}
	b.flushing++
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), applyFlushTimeout)
	defer cancel()
	for len(b.pending) > 0 {
		batch := b.pending
		b.pending = nil
		b.mu.Unlock()
		flush(fctx, batch)
		for _, x := range batch {
			close(x.done)
		}
		b.mu.Lock()
	}
	b.flushing--
	b.mu.Unlock()
	return c.res, c.err
}

// maxApplyBatch bounds the events one apply script applies: Redis runs
// nothing else while a script runs, so a long queue goes out as several
// scripts in one pipeline rather than one long script.
const maxApplyBatch = 64

// flushApplies applies every call's event, up to maxApplyBatch per apply
// script, all the scripts in one pipeline, loading the script first if
// Redis does not have it cached.
func (c *core) flushApplies(ctx context.Context, batch []*applyCall) {
	cmds, err := c.pipeApplies(ctx, batch, scriptApply.EvalSha)
	if err != nil && isNoScript(cmds) {
		if lerr := scriptApply.Load(ctx, c.rdb).Err(); lerr != nil {
			for _, x := range batch {
				x.err = fmt.Errorf("load apply script: %w", lerr)
			}
			return
		}
		cmds, _ = c.pipeApplies(ctx, batch, scriptApply.EvalSha)
	}
	for i, cmd := range cmds {
		chunk := batch[i*maxApplyBatch : min((i+1)*maxApplyBatch, len(batch))]
		replies, err := cmd.Slice()
		if err == nil && len(replies) != len(chunk) {
			err = fmt.Errorf("%d replies for %d events", len(replies), len(chunk))
		}
		for j, x := range chunk {
			if err != nil {
				x.err = fmt.Errorf("apply task state %s v%d of workspace %s: %w", x.ev.Status, x.ev.Version, x.ev.Workspace, err)
				continue
			}
			x.res, x.err = applyResult(x.ev.Workspace, replies[j])
		}
	}
}

type evalFunc func(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd

// pipeApplies sends one apply script per maxApplyBatch calls, in one
// pipeline.
func (c *core) pipeApplies(ctx context.Context, batch []*applyCall, eval evalFunc) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, 0, (len(batch)+maxApplyBatch-1)/maxApplyBatch)
	now := ms(c.now())
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for len(batch) > 0 {
			chunk := batch[:min(maxApplyBatch, len(batch))]
			batch = batch[len(chunk):]
			keys := make([]string, len(chunk))
			args := make([]any, 0, 3+5*len(chunk))
			args = append(args, c.k.prefix, now, durMS(c.tombstone))
			for i, x := range chunk {
				keys[i] = c.k.ws(x.ev.Workspace)
				args = append(args, x.ev.Workspace, x.ev.Version, string(x.ev.Status), x.kind, x.ev.StoppedReason)
			}
			cmds = append(cmds, eval(ctx, p, keys, args...))
		}
		return nil
	})
	return cmds, err
}

func isNoScript(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		if err := c.Err(); errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT") {
			return true
		}
	}
	return false
}
