package files

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// FormatVersion is the manifest format this build writes: every tree is a
// chain of layers (a base snapshot and deltas) with a listing (D35). It
// restores this one, FormatTrees and FormatWorkspaceOnly.
const FormatVersion = 3

// FormatTrees is format 2: one whole snapshot per tree (workspace and
// session), no layers. Still restored.
const FormatTrees = 2

// FormatWorkspaceOnly is format 1: the workspace tree only, no session,
// no digests. Still restored.
const FormatWorkspaceOnly = 1

// EncodingTarGzip is the only snapshot encoding: a tar stream (the agent's
// GET /files) compressed with gzip.
const EncodingTarGzip = "tar+gzip"

// maxManifestBytes bounds reading a manifest.
const maxManifestBytes = 64 << 10

// ErrInvalidSnapshot is returned (wrapped) by Restore when the manifest is
// unreadable or of another format, or the snapshot it names is missing or
// does not match it (size, SHA-256, gzip). The workspace is left as it
// was.
var ErrInvalidSnapshot = errors.New("invalid files snapshot")

// Manifest is <tenant>/<conversation>/manifest.json: the one snapshot a
// restore may use. It is written only after that snapshot's upload
// completed.
type Manifest struct {
	// Format is FormatVersion.
	Format int `json:"format"`
	// Snapshot is the snapshot's key relative to the conversation's
	// folder ("snapshots/<time>-<random>.tar.gz").
	Snapshot string `json:"snapshot"`
	// Encoding is EncodingTarGzip.
	Encoding string `json:"encoding"`
	// Size is the snapshot object's length in bytes.
	Size int64 `json:"size"`
	// SHA256 is the lowercase hex SHA-256 of the snapshot object.
	SHA256 string `json:"sha256"`
	// TarSize is the length of the uncompressed tar stream.
	TarSize int64 `json:"tar_size"`
	// CreatedAt is when the save started.
	CreatedAt time.Time `json:"created_at"`
	// Workspace is the ID of the workspace the files came from.
	Workspace string `json:"workspace"`
	// Tenant and Conversation repeat the folder's names.
	Tenant       string `json:"tenant"`
	Conversation string `json:"conversation"`
	// Digest is the agent's digest of the workspace tree (GET
	// /files/workspace/digest) taken before the snapshot was read; a save
	// whose digest is the same reuses the snapshot (format 2).
	Digest string `json:"digest,omitempty"`
	// Session is the snapshot of the Claude Code state ($HOME/.claude),
	// absent when the agent had none to give (format 2).
	Session *TreeSnapshot `json:"session,omitempty"`
	// Reason is why the save was made: a release reason or "checkpoint"
	// (format 2).
	Reason string `json:"reason,omitempty"`
	// Deltas are the workspace tree's delta layers after the base
	// snapshot, oldest first (format 3).
	Deltas []Layer `json:"deltas,omitempty"`
	// Listing is the workspace tree's listing object (format 3).
	Listing *Layer `json:"listing,omitempty"`
}

// Layer is one object of a tree's chain: a delta snapshot (a tar.gz of the
// regular files new or changed since the previous save) or a listing (a
// gzip'd JSON list of every entry of the tree and the layer holding each
// file's content).
type Layer struct {
	// Object is the name relative to the conversation's folder.
	Object  string `json:"object"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	TarSize int64  `json:"tar_size,omitempty"`
}

// TreeSnapshot is one tree's snapshot in a format 2 manifest, with the
// same checks as the workspace snapshot's.
type TreeSnapshot struct {
	// Snapshot is "sessions/<time>-<random>.tar.gz".
	Snapshot string `json:"snapshot"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	TarSize  int64  `json:"tar_size"`
	// Digest is the agent's digest of the tree when it was read.
	Digest string `json:"digest,omitempty"`
	// Deltas and Listing are as the Manifest's (format 3).
	Deltas  []Layer `json:"deltas,omitempty"`
	Listing *Layer  `json:"listing,omitempty"`
}

// decodeManifest parses and checks a manifest.
func decodeManifest(b []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: decode manifest: %v", ErrInvalidSnapshot, err)
	}
	if m.Format != FormatVersion && m.Format != FormatTrees && m.Format != FormatWorkspaceOnly {
		return m, fmt.Errorf("%w: manifest format %d, want %d to %d", ErrInvalidSnapshot, m.Format, FormatWorkspaceOnly, FormatVersion)
	}
	if m.Format == FormatWorkspaceOnly && (m.Session != nil || m.Digest != "") {
		return m, fmt.Errorf("%w: format 1 manifest with format 2 fields", ErrInvalidSnapshot)
	}
	if err := checkChain(m.Format, snapshotsDir, m.workspaceTree()); err != nil {
		return m, err
	}
	if m.Session != nil {
		if err := checkChain(m.Format, sessionsDir, *m.Session); err != nil {
			return m, fmt.Errorf("session: %w", err)
		}
	}
	if m.Encoding != EncodingTarGzip {
		return m, fmt.Errorf("%w: manifest encoding %q", ErrInvalidSnapshot, m.Encoding)
	}
	if err := checkTree(snapshotsDir, TreeSnapshot{Snapshot: m.Snapshot, Size: m.Size, SHA256: m.SHA256}); err != nil {
		return m, err
	}
	if m.Session != nil {
		if err := checkTree(sessionsDir, *m.Session); err != nil {
			return m, fmt.Errorf("session: %w", err)
		}
	}
	return m, nil
}

// checkTree checks one tree's snapshot entry: a name in dir of the same
// conversation, a positive size, a SHA-256.
func checkTree(dir string, t TreeSnapshot) error {
	if !validSnapshotName(dir, t.Snapshot) {
		return fmt.Errorf("%w: manifest names snapshot %q", ErrInvalidSnapshot, t.Snapshot)
	}
	if t.Size <= 0 {
		return fmt.Errorf("%w: manifest size %d", ErrInvalidSnapshot, t.Size)
	}
	if d, err := hex.DecodeString(t.SHA256); err != nil || len(d) != 32 {
		return fmt.Errorf("%w: manifest sha256 %q", ErrInvalidSnapshot, t.SHA256)
	}
	return nil
}

// maxDeltas bounds a chain read from a manifest.
const maxDeltas = 64

// checkChain checks a tree's layers: a format 3 tree has a listing and at
// most maxDeltas deltas, each a valid object of dir; older formats none.
func checkChain(format int, dir string, t TreeSnapshot) error {
	if format < FormatVersion {
		if t.Listing != nil || len(t.Deltas) > 0 {
			return fmt.Errorf("%w: format %d manifest with layers", ErrInvalidSnapshot, format)
		}
		return nil
	}
	if t.Listing == nil {
		return fmt.Errorf("%w: format %d tree without a listing", ErrInvalidSnapshot, format)
	}
	if len(t.Deltas) > maxDeltas {
		return fmt.Errorf("%w: %d deltas, at most %d", ErrInvalidSnapshot, len(t.Deltas), maxDeltas)
	}
	if !validObjectName(dir, t.Listing.Object, listingSuffix) {
		return fmt.Errorf("%w: manifest names listing %q", ErrInvalidSnapshot, t.Listing.Object)
	}
	if err := checkTree(dir, TreeSnapshot{Snapshot: dir + "x" + snapshotSuffix, Size: t.Listing.Size, SHA256: t.Listing.SHA256}); err != nil {
		return fmt.Errorf("listing: %w", err)
	}
	for _, d := range t.Deltas {
		if err := checkTree(dir, TreeSnapshot{Snapshot: d.Object, Size: d.Size, SHA256: d.SHA256}); err != nil {
			return fmt.Errorf("delta: %w", err)
		}
	}
	return nil
}

// workspaceTree returns the manifest's workspace snapshot as a TreeSnapshot.
func (m Manifest) workspaceTree() TreeSnapshot {
	return TreeSnapshot{Snapshot: m.Snapshot, Size: m.Size, SHA256: m.SHA256, TarSize: m.TarSize, Digest: m.Digest,
		Deltas: m.Deltas, Listing: m.Listing}
}

// checkpointID names the save a manifest describes: its creation time,
// the same for every tree of it ("20260102T030405.000000006Z").
func (m Manifest) checkpointID() string {
	return m.CreatedAt.UTC().Format(snapshotTimeFmt)
}
