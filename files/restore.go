package files

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/workspaced/workspaced/agent/api"
	agentclient "github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/workspace"
)

// Restore puts the conversation's saved files into the workspace at
// t.Endpoint (PUT /files, which replaces the workspace's contents) and
// reports whether there were any: no manifest is (false, nil).
//
// The snapshot is streamed, never held in memory, and verified against
// the manifest (size, SHA-256) on the way. A mismatch, a missing snapshot
// or an unreadable manifest returns an error wrapping ErrInvalidSnapshot
// (a workspace.Terminal error: retrying reads the same objects) and the
// workspace is left unchanged: the agent extracts all or nothing, and the
// end of the archive is held back until the snapshot is verified, so a
// failed check fails the upload before the agent sees a complete archive.
// Agent and S3 failures return a plain error (retry); an invalid tenant or
// conversation a workspace.Terminal error wrapping ErrInvalidTarget.
func (s *Store) Restore(ctx context.Context, t workspace.RestoreTarget) (bool, error) {
	cp, err := s.RestoreCheckpoint(ctx, t)
	return cp != nil, err
}

// RestoreCheckpoint is Restore, returning which save was restored (nil:
// none). A format 2 save restores the session tree ($HOME/.claude) after
// the workspace, with the same checks; a format 1 save the workspace only.
func (s *Store) RestoreCheckpoint(ctx context.Context, t workspace.RestoreTarget) (*workspace.Checkpoint, error) {
	start := s.opts.Now()
	log := s.log.With("tenant", t.Tenant, "conversation", t.Conversation, "workspace", t.Workspace)
	m, err := s.restore(ctx, t)
	d := s.opts.Now().Sub(start)
	switch {
	case errors.Is(err, ErrInvalidTarget), errors.Is(err, ErrInvalidSnapshot):
		s.metrics.done(opRestore, OutcomeInvalid, d, 0)
		log.Error("restore files refused", "err", err)
		return nil, workspace.Terminal(fmt.Errorf("restore files of conversation %s: %w", t.Conversation, err))
	case err != nil:
		s.metrics.done(opRestore, OutcomeError, d, 0)
		log.Warn("restore files failed", "err", err)
		return nil, fmt.Errorf("restore files of conversation %s: %w", t.Conversation, err)
	case m == nil:
		s.metrics.done(opRestore, OutcomeNone, d, 0)
		log.Debug("no files to restore")
		return nil, nil
	}
	size := m.Size
	if m.Session != nil {
		size += m.Session.Size
	}
	s.metrics.done(opRestore, OutcomeRestored, d, size)
	log.Info("files restored", "snapshot", m.Snapshot, "size", m.Size, "session", m.Session != nil, "duration", d)
	return &workspace.Checkpoint{ID: m.checkpointID(), CreatedAt: m.CreatedAt, Reason: m.Reason, Workspace: m.Workspace}, nil
}

// restore returns the manifest it restored, nil if there is none.
func (s *Store) restore(ctx context.Context, t workspace.RestoreTarget) (*Manifest, error) {
	l, err := newLayout(s.opts.Prefix, t.Tenant, t.Conversation)
	if err != nil {
		return nil, err
	}
	m, err := s.readManifest(ctx, l)
	if err != nil || m == nil {
		return nil, err
	}
	ag, closeIdle, err := s.agent(t.Endpoint)
	if err != nil {
		return nil, err
	}
	defer closeIdle()
	if err := s.restoreTree(ctx, ag, l, api.TreeWorkspace, m.workspaceTree()); err != nil {
		return nil, err
	}
	if m.Session != nil {
		if err := s.restoreTree(ctx, ag, l, api.TreeSession, *m.Session); err != nil {
			return nil, fmt.Errorf("session: %w", err)
		}
	}
	return m, nil
}

// restoreTree streams one verified snapshot into the agent's tree.
func (s *Store) restoreTree(ctx context.Context, ag *agentclient.Client, l layout, tree string, ts TreeSnapshot) error {
	if ts.Listing != nil {
		return s.restoreChain(ctx, ag, l, tree, ts)
	}
	key := l.snapshot(ts.Snapshot)
	obj, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.opts.Bucket), Key: aws.String(key)})
	var nsk *types.NoSuchKey
	switch {
	case errors.As(err, &nsk):
		return fmt.Errorf("%w: snapshot %s named by the manifest is missing", ErrInvalidSnapshot, key)
	case err != nil:
		return fmt.Errorf("get snapshot %s: %w", key, err)
	}
	defer obj.Body.Close()
	if n := aws.ToInt64(obj.ContentLength); obj.ContentLength != nil && n != ts.Size {
		return fmt.Errorf("%w: snapshot %s is %d bytes, manifest says %d", ErrInvalidSnapshot, key, n, ts.Size)
	}
	want, _ := hex.DecodeString(ts.SHA256) // checked by decodeManifest
	var fail firstFailure
	v := &verifier{r: obj.Body, h: sha256.New(), size: ts.Size, sum: want, fail: &fail}
	zr, err := gzip.NewReader(v)
	if err != nil {
		fail.set(err, true)
		return fail.wrap(key)
	}
	perr := ag.PutTree(ctx, tree, &holdback{r: zr, end: v.finish, fail: &fail})
	if err := fail.wrap(key); err != nil {
		return err
	}
	return putError(tree, perr)
}

// restoreChain streams a format 3 tree (its listing and layers, merged
// by mergeChain) into the agent's tree. A failure of the merge breaks the
// request, so the agent discards what it staged.
func (s *Store) restoreChain(ctx context.Context, ag *agentclient.Client, l layout, tree string, ts TreeSnapshot) error {
	layers := append([]Layer{{Object: ts.Snapshot, Size: ts.Size, SHA256: ts.SHA256}}, ts.Deltas...)
	listing, err := s.readListing(ctx, l, *ts.Listing, len(layers))
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	merged := make(chan error, 1)
	go func() {
		err := s.mergeChain(ctx, l, layers, listing, pw)
		_ = pw.CloseWithError(err)
		merged <- err
	}()
	perr := ag.PutTree(ctx, tree, pr)
	_ = pr.CloseWithError(errUploadEnded)
	if merr := <-merged; merr != nil && !errors.Is(merr, errUploadEnded) {
		return merr
	}
	return putError(tree, perr)
}

// putError classifies the agent's answer to PUT /files of a verified tree.
func putError(tree string, perr error) error {
	var ae *agentclient.APIError
	switch {
	case errors.As(perr, &ae) && ae.Status < 500:
		// The agent refused a verified snapshot (too large, say):
		// retrying sends the same bytes.
		return workspace.Terminal(fmt.Errorf("put %s files: %w", tree, perr))
	case perr != nil:
		return fmt.Errorf("put %s files: %w", tree, perr)
	}
	return nil
}

// readManifest returns the conversation's manifest, nil if it has none.
func (s *Store) readManifest(ctx context.Context, l layout) (*Manifest, error) {
	obj, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.opts.Bucket), Key: aws.String(l.manifest())})
	var nsk *types.NoSuchKey
	switch {
	case errors.As(err, &nsk):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get manifest %s: %w", l.manifest(), err)
	}
	defer obj.Body.Close()
	b, err := io.ReadAll(io.LimitReader(obj.Body, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", l.manifest(), err)
	}
	if len(b) > maxManifestBytes {
		return nil, fmt.Errorf("%w: manifest %s over %d bytes", ErrInvalidSnapshot, l.manifest(), maxManifestBytes)
	}
	m, err := decodeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", l.manifest(), err)
	}
	return &m, nil
}
