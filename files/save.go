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
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

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
	m, err := s.save(ctx, t, start, log)
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
	s.metrics.done(opSave, OutcomeSaved, d, m.Size)
	log.Info("files saved", "snapshot", m.Snapshot, "size", m.Size, "tar_size", m.TarSize, "duration", d)
	return nil
}

func (s *Store) save(ctx context.Context, t workspace.SaveTarget, start time.Time, log *slog.Logger) (Manifest, error) {
	l, err := newLayout(s.opts.Prefix, t.Tenant, t.Conversation)
	if err != nil {
		return Manifest{}, err
	}
	ag, closeIdle, err := s.agent(t.Endpoint)
	if err != nil {
		return Manifest{}, err
	}
	defer closeIdle()
	random, err := randomHex(8)
	if err != nil {
		return Manifest{}, err
	}
	m := Manifest{
		Format: FormatVersion, Encoding: EncodingTarGzip,
		Snapshot: snapshotName(start, random), CreatedAt: start.UTC(),
		Workspace: t.Workspace, Tenant: t.Tenant, Conversation: t.Conversation,
	}
	body, err := ag.GetFiles(ctx)
	if err != nil {
		return m, fmt.Errorf("get files: %w", err)
	}
	defer body.Close()
	if err := s.upload(ctx, l.snapshot(m.Snapshot), body, &m); err != nil {
		return m, err
	}
	if err := s.writeManifest(ctx, l, m); err != nil {
		return m, err
	}
	if err := s.prune(ctx, l, m.Snapshot); err != nil {
		log.Warn("prune old snapshots failed", "err", err)
	}
	return m, nil
}

// upload compresses the tar stream body into the object key, filling m's
// sizes and digest. The compressor writes into a pipe the transfer
// manager reads parts from, so only the part buffers are held in memory.
func (s *Store) upload(ctx context.Context, key string, body io.ReadCloser, m *Manifest) error {
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

// prune deletes the conversation's snapshots but the newest Keep (by name,
// which sorts by creation time) and current, the one the manifest names.
// Only snapshots older than current are candidates, so a concurrent save's
// newer snapshot is never deleted under it.
func (s *Store) prune(ctx context.Context, l layout, current string) error {
	var names []string
	p := s3.NewListObjectsV2Paginator(s.s3, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.opts.Bucket), Prefix: aws.String(l.snapshots()),
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
		if n < current {
			older = append(older, n)
		}
	}
	if len(older) < s.opts.Keep {
		return nil
	}
	doomed := older[:len(older)-(s.opts.Keep-1)]
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
