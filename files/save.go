package files

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/workspaced/workspaced/agent/api"
	agentclient "github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/workspace"
)

// errUploadEnded stops the compressor when the upload returned before
// reading all of its input.
var errUploadEnded = errors.New("upload ended")

// Save streams the workspace's files (GET
// /files on the agent at t.Endpoint) through gzip into a new snapshot
// object, then points the conversation's manifest at it and prunes old
// snapshots. Memory stays bounded by the multipart buffers whatever the
// workspace's size; nothing is written to disk.
//
// If anything fails before the manifest is written, the manifest still
// names the previous snapshot (or none) and the failed multipart upload
// is aborted; the error is returned for the caller to retry. An invalid
// tenant or conversation is a workspace.Terminal error wrapping
// ErrInvalidTarget. A failure to prune is only logged.
func (s *Store) Save(ctx context.Context, t workspace.SaveTarget) error {
	start := s.opts.Now()
	log := s.log.With("tenant", t.Tenant, "conversation", t.Conversation, "workspace", t.Workspace)
	m, sent, err := s.save(ctx, t, start, log, false)
	d := s.opts.Now().Sub(start)
	switch {
	case errors.Is(err, ErrInvalidTarget):
		s.metrics.done(opSave, OutcomeInvalid, d, 0)
		return workspace.Terminal(fmt.Errorf("save files of conversation %s: %w", t.Conversation, err))
	case err != nil:
		s.metrics.done(opSave, OutcomeError, d, 0)
		log.Warn("save files failed", "err", err)
		return fmt.Errorf("save files of conversation %s: %w", t.Conversation, err)
	}
	if sent == 0 {
		s.metrics.done(opSave, OutcomeUnchanged, d, 0)
		log.Info("files unchanged since the last save", "snapshot", m.Snapshot, "reason", t.Reason, "duration", d)
		return nil
	}
	s.metrics.done(opSave, OutcomeSaved, d, sent)
	log.Info("files saved", "snapshot", m.Snapshot, "size", m.Size, "tar_size", m.TarSize,
		"session", m.Session != nil, "reason", t.Reason, "duration", d)
	return nil
}

// save returns the manifest in force and the compressed bytes it uploaded
// (0: nothing changed, nothing written).
// With fresh, every tree is saved as a new base, whatever the previous
// manifest.
func (s *Store) save(ctx context.Context, t workspace.SaveTarget, start time.Time, log *slog.Logger, fresh bool) (Manifest, int64, error) {
	l, err := newLayout(s.opts.Prefix, t.Tenant, t.Conversation)
	if err != nil {
		return Manifest{}, 0, err
	}
	prev, err := s.readManifest(ctx, l)
	if err != nil {
		// An unreadable previous manifest only costs the reuse of its
		// snapshots; the new one replaces it.
		log.Warn("previous manifest unreadable; saving every tree", "err", err)
		prev = nil
	}
	ag, closeIdle, err := s.agent(t.Endpoint)
	if err != nil {
		return Manifest{}, 0, err
	}
	defer closeIdle()
	m := Manifest{
		Format: FormatVersion, Encoding: EncodingTarGzip, CreatedAt: start.UTC(),
		Workspace: t.Workspace, Tenant: t.Tenant, Conversation: t.Conversation, Reason: t.Reason,
	}
	var prevWS, prevSession *TreeSnapshot
	if !fresh && prev != nil && prev.Format == FormatVersion && prev.Workspace == t.Workspace {
		w := prev.workspaceTree()
		prevWS, prevSession = &w, prev.Session
	}
	ws, wsSent, err := s.saveTree(ctx, ag, l, api.TreeWorkspace, start, prevWS, log)
	if err != nil {
		return m, 0, err
	}
	m.Snapshot, m.Size, m.SHA256, m.TarSize, m.Digest = ws.Snapshot, ws.Size, ws.SHA256, ws.TarSize, ws.Digest
	m.Deltas, m.Listing = ws.Deltas, ws.Listing
	session, sessionSent, err := s.saveTree(ctx, ag, l, api.TreeSession, start, prevSession, log)
	switch {
	case agentclient.IsNotFound(err):
		// An agent from before trees: the workspace alone is saved.
		log.Warn("agent has no session tree; saving the workspace only")
	case err != nil:
		return m, 0, err
	default:
		m.Session = &session
	}
	sent := wsSent + sessionSent
	if sent == 0 && prev != nil {
		// Nothing changed since the manifest's save: nothing is written.
		return *prev, 0, nil
	}
	// A save never moves the manifest back: a checkpoint that started
	// before a release's save and ends after it leaves the release's
	// manifest in force (its own objects are pruned later).
	cur, err := s.readManifest(ctx, l)
	if err == nil && cur != nil && cur.CreatedAt.After(m.CreatedAt) {
		log.Info("a newer save moved the manifest meanwhile; keeping it", "newer", cur.CreatedAt)
		return *cur, 0, nil
	}
	// A tree reusing prev's objects (unchanged, or a delta on prev's
	// chain) is only sound while prev is the manifest: an older save that
	// moved it meanwhile may have pruned prev's objects. Then every tree
	// is saved again as a fresh base.
	reused := (prevWS != nil && ws.Snapshot == prevWS.Snapshot) ||
		(prevSession != nil && m.Session != nil && m.Session.Snapshot == prevSession.Snapshot)
	if err == nil && cur != nil && reused && !cur.CreatedAt.Equal(prev.CreatedAt) {
		log.Info("the manifest moved while saving on it; saving fresh bases", "moved_to", cur.CreatedAt)
		return s.save(ctx, t, start, log, true)
	}
	if err := s.writeManifest(ctx, l, m); err != nil {
		return m, 0, err
	}
	for _, dir := range []string{snapshotsDir, sessionsDir} {
		current := m.workspaceTree().referenced()
		if dir == sessionsDir {
			if m.Session == nil {
				continue
			}
			current = m.Session.referenced()
		}
		if err := s.prune(ctx, l, dir, current); err != nil {
			log.Warn("prune old snapshots failed", "folder", dir, "err", err)
		}
	}
	return m, sent, nil
}

// saveTree saves one tree of the agent, unless the agent's digest of it
// equals prev's (then prev is returned, and 0 bytes sent). The digest is
// taken before the tree is read: a change while it streams makes the next
// save's digest differ, never the reverse.
//
// With a format 3 prev whose chain is short enough (compactDue), only a
// delta is uploaded: the regular files new or changed since prev's
// listing. Otherwise, or if the delta finds a file whose content changed
// without its metadata, a fresh base holding every file is. Either way a
// new listing is uploaded; it returns the bytes both objects hold.
func (s *Store) saveTree(ctx context.Context, ag *agentclient.Client, l layout, tree string, start time.Time, prev *TreeSnapshot, log *slog.Logger) (TreeSnapshot, int64, error) {
	d, err := ag.TreeDigest(ctx, tree)
	switch {
	case agentclient.IsNotFound(err) && tree == api.TreeWorkspace:
		d = api.TreeDigest{} // an agent from before digests: always upload
	case err != nil:
		return TreeSnapshot{}, 0, fmt.Errorf("digest %s: %w", tree, err)
	case prev != nil && prev.Digest != "" && prev.Digest == d.Digest:
		return *prev, 0, nil
	}
	if prev != nil && prev.Listing != nil && !s.compactDue(*prev) {
		listing, err := s.readListing(ctx, l, *prev.Listing, len(prev.Deltas)+1)
		if err == nil {
			byName := make(map[string]listed, len(listing))
			for _, e := range listing {
				byName[e.Name] = e
			}
			// A file rewritten under the same metadata is dropped from
			// the previous listing (so the delta carries it) and the
			// delta read again, a few times at most.
			for range maxStaleRetries {
				var ts TreeSnapshot
				var sent int64
				ts, sent, err = s.saveLayer(ctx, ag, l, tree, start, d.Digest, prev, byName)
				var se *staleError
				if !errors.As(err, &se) {
					return ts, sent, err
				}
				delete(byName, se.name)
			}
		}
		log.Info("saving a fresh base instead of a delta", "tree", tree, "reason", err)
	}
	return s.saveLayer(ctx, ag, l, tree, start, d.Digest, nil, nil)
}

// maxStaleRetries bounds re-reading a tree for a delta after files
// rewritten under the same metadata were found; then a base is saved.
const maxStaleRetries = 3

// compactDue reports whether the next save of a chain writes a fresh base:
// after Options.MaxDeltas deltas, or when the deltas' bytes exceed half the
// base's.
func (s *Store) compactDue(prev TreeSnapshot) bool {
	var deltas int64
	for _, d := range prev.Deltas {
		deltas += d.Size
	}
	return len(prev.Deltas) >= s.opts.MaxDeltas || deltas > prev.Size/2
}

// saveLayer uploads the agent's tree as a delta on prev (base nil: a
// fresh base) and then its listing.
func (s *Store) saveLayer(ctx context.Context, ag *agentclient.Client, l layout, tree string, start time.Time, digest string, prev *TreeSnapshot, base map[string]listed) (TreeSnapshot, int64, error) {
	random, err := randomHex(8)
	if err != nil {
		return TreeSnapshot{}, 0, err
	}
	dir := snapshotsDir
	if tree == api.TreeSession {
		dir = sessionsDir
	}
	layerIdx := 0
	if prev != nil {
		layerIdx = len(prev.Deltas) + 1
	}
	body, err := ag.GetTree(ctx, tree)
	if err != nil {
		return TreeSnapshot{}, 0, fmt.Errorf("get %s files: %w", tree, err)
	}
	defer body.Close()
	pr, pw := io.Pipe()
	var listing []listed
	diffed := make(chan error, 1)
	go func() {
		var err error
		listing, err = diffTree(body, pw, base, layerIdx)
		_ = pw.CloseWithError(err)
		diffed <- err
	}()
	var layer TreeSnapshot
	uerr := s.upload(ctx, l.snapshot(snapshotName(dir, start, random)), pr, &layer)
	_ = pr.CloseWithError(errUploadEnded)
	_ = body.Close()
	if derr := <-diffed; derr != nil && !errors.Is(derr, errUploadEnded) && !errors.Is(derr, io.ErrClosedPipe) {
		return TreeSnapshot{}, 0, fmt.Errorf("%s files: %w", tree, derr)
	}
	if uerr != nil {
		return TreeSnapshot{}, 0, uerr
	}
	b, err := encodeListing(listing)
	if err != nil {
		return TreeSnapshot{}, 0, err
	}
	var lst TreeSnapshot
	if err := s.upload(ctx, l.snapshot(objectName(dir, start, random, listingSuffix)), io.NopCloser(bytes.NewReader(b)), &lst); err != nil {
		return TreeSnapshot{}, 0, err
	}
	ts := TreeSnapshot{Snapshot: snapshotName(dir, start, random), Size: layer.Size, SHA256: layer.SHA256, TarSize: layer.TarSize, Digest: digest,
		Listing: &Layer{Object: objectName(dir, start, random, listingSuffix), Size: lst.Size, SHA256: lst.SHA256, TarSize: lst.TarSize}}
	if prev != nil {
		ts.Snapshot, ts.Size, ts.SHA256, ts.TarSize = prev.Snapshot, prev.Size, prev.SHA256, prev.TarSize
		ts.Deltas = append(append([]Layer(nil), prev.Deltas...),
			Layer{Object: snapshotName(dir, start, random), Size: layer.Size, SHA256: layer.SHA256, TarSize: layer.TarSize})
	}
	return ts, layer.Size + lst.Size, nil
}

// referenced returns the object names of a tree's chain.
func (t TreeSnapshot) referenced() []string {
	names := []string{t.Snapshot}
	for _, d := range t.Deltas {
		names = append(names, d.Object)
	}
	if t.Listing != nil {
		names = append(names, t.Listing.Object)
	}
	return names
}

// upload compresses the tar stream body into the object key, filling m's
// sizes and digest. The compressor writes into a pipe the transfer
// manager reads parts from, so only the part buffers are held in memory.
func (s *Store) upload(ctx context.Context, key string, body io.ReadCloser, m *TreeSnapshot) error {
	pr, pw := io.Pipe()
	hw := &hashWriter{w: pw, h: sha256.New()}
	tar := &countReader{r: body}
	compressed := make(chan error, 1)
	go func() {
		err := compress(hw, tar, s.opts.GzipLevel)
		// A nil error ends the upload's input with io.EOF.
		_ = pw.CloseWithError(err)
		compressed <- err
	}()
	_, uerr := s.tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket: aws.String(s.opts.Bucket), Key: aws.String(key), Body: pr,
		ContentType: aws.String("application/gzip"),
	})
	// Unblock the compressor if the upload stopped reading: a write to the
	// pipe fails at once, and a read from the agent ends when its body is
	// closed.
	_ = pr.CloseWithError(errUploadEnded)
	if uerr != nil {
		_ = body.Close()
	}
	cerr := <-compressed
	switch {
	case cerr != nil && !errors.Is(cerr, errUploadEnded):
		return fmt.Errorf("stream files: %w", cerr)
	case uerr != nil:
		return fmt.Errorf("upload snapshot %s: %w", key, uerr)
	case cerr != nil:
		return fmt.Errorf("upload snapshot %s: upload ended early", key)
	}
	m.Size, m.TarSize = hw.n, tar.n
	m.SHA256 = hex.EncodeToString(hw.h.Sum(nil))
	return nil
}

// compress copies the tar stream r into w through gzip.
func compress(w io.Writer, r io.Reader, level int) error {
	zw, err := gzip.NewWriterLevel(w, level)
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, r); err != nil {
		return err
	}
	return zw.Close()
}

// writeManifest points the conversation at the uploaded snapshot. A single
// PutObject replaces the manifest atomically: a restore sees the old one
// or the new one.
func (s *Store) writeManifest(ctx context.Context, l layout, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	_, err = s.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.opts.Bucket), Key: aws.String(l.manifest()),
		Body: bytes.NewReader(b), ContentType: aws.String("application/json"),
	})
	if err != nil {
		return fmt.Errorf("write manifest %s: %w", l.manifest(), err)
	}
	return nil
}

// prune deletes the conversation's objects in dir but those of current
// (the chain the manifest names: base, deltas, listing) and those of the
// newest Keep-1 other saves older than current's newest object (by name,
// which sorts by creation time; a save's objects share the name's
// "<time>-<random>" stem). Only objects older than current's newest are
// candidates, so a concurrent save's newer objects are never deleted
// under it.
func (s *Store) prune(ctx context.Context, l layout, dir string, current []string) error {
	keep := make(map[string]bool, len(current))
	newest := ""
	for _, n := range current {
		keep[n] = true
		newest = max(newest, n)
	}
	var names []string
	p := s3.NewListObjectsV2Paginator(s.s3, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.opts.Bucket), Prefix: aws.String(l.folder(dir)),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list snapshots: %w", err)
		}
		for _, o := range page.Contents {
			names = append(names, aws.ToString(o.Key)[len(l.dir):])
		}
	}
	sort.Strings(names)
	var older []string
	for _, n := range names {
		if n < newest && !keep[n] {
			older = append(older, n)
		}
	}
	kept := map[string]bool{}
	var doomed []string
	for i := len(older) - 1; i >= 0; i-- {
		st := saveStem(older[i])
		if !kept[st] && len(kept) < s.opts.Keep-1 {
			kept[st] = true
		}
		if !kept[st] {
			doomed = append(doomed, older[i])
		}
	}
	for len(doomed) > 0 {
		batch := doomed[:min(len(doomed), 1000)] // DeleteObjects takes at most 1000 keys
		doomed = doomed[len(batch):]
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, n := range batch {
			ids[i] = types.ObjectIdentifier{Key: aws.String(l.snapshot(n))}
		}
		out, err := s.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.opts.Bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("delete old snapshots: %w", err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("delete old snapshot %s: %s %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
		}
	}
	return nil
}

// saveStem is the "<dir><time>-<random>" every object of one save shares.
func saveStem(name string) string {
	return strings.TrimSuffix(strings.TrimSuffix(name, listingSuffix), snapshotSuffix)
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random snapshot name: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// hashWriter writes to w and hashes and counts what w accepted.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
