package files

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// FormatVersion is the manifest format this build writes and the only one
// it restores.
const FormatVersion = 1

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
}

// decodeManifest parses and checks a manifest.
func decodeManifest(b []byte) (Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: decode manifest: %v", ErrInvalidSnapshot, err)
	}
	if m.Format != FormatVersion {
		return m, fmt.Errorf("%w: manifest format %d, want %d", ErrInvalidSnapshot, m.Format, FormatVersion)
	}
	if m.Encoding != EncodingTarGzip {
		return m, fmt.Errorf("%w: manifest encoding %q", ErrInvalidSnapshot, m.Encoding)
	}
	if !validSnapshotName(m.Snapshot) {
		return m, fmt.Errorf("%w: manifest names snapshot %q", ErrInvalidSnapshot, m.Snapshot)
	}
	if m.Size <= 0 {
		return m, fmt.Errorf("%w: manifest size %d", ErrInvalidSnapshot, m.Size)
	}
	if d, err := hex.DecodeString(m.SHA256); err != nil || len(d) != 32 {
		return m, fmt.Errorf("%w: manifest sha256 %q", ErrInvalidSnapshot, m.SHA256)
	}
	return m, nil
}
