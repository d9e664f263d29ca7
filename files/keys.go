package files

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidTarget is returned (wrapped, and marked terminal) for a tenant
// or conversation that cannot be an S3 key segment.
var ErrInvalidTarget = errors.New("invalid files target")

// maxSegmentBytes bounds one key segment; S3 keys are at most 1024 bytes.
const maxSegmentBytes = 255

// Key names inside a conversation's folder.
const (
	manifestName    = "manifest.json"
	snapshotsDir    = "snapshots/"
	sessionsDir     = "sessions/"
	snapshotSuffix  = ".tar.gz"
	listingSuffix   = ".listing.json.gz"
	snapshotTimeFmt = "20060102T150405.000000000Z"
)

// ValidSegment reports why s cannot be one segment of an object key (a
// tenant or a conversation ID), or nil. Refused: empty, "." and "..",
// longer than 255 bytes, invalid UTF-8, and any slash, backslash, control
// or space character.
func ValidSegment(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty key segment", ErrInvalidTarget)
	case s == "." || s == "..":
		return fmt.Errorf("%w: key segment %q", ErrInvalidTarget, s)
	case len(s) > maxSegmentBytes:
		return fmt.Errorf("%w: key segment longer than %d bytes", ErrInvalidTarget, maxSegmentBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: key segment %q is not UTF-8", ErrInvalidTarget, s)
	}
	for _, r := range s {
		if r == '/' || r == '\\' || unicode.IsControl(r) || unicode.IsSpace(r) {
			return fmt.Errorf("%w: key segment %q contains %q", ErrInvalidTarget, s, r)
		}
	}
	return nil
}

// layout is the keys of one conversation's files.
type layout struct {
	dir string // <prefix><tenant>/<conversation>/
}

// newLayout validates tenant and conversation and returns their keys.
func newLayout(prefix, tenant, conversation string) (layout, error) {
	if err := ValidSegment(tenant); err != nil {
		return layout{}, fmt.Errorf("tenant: %w", err)
	}
	if err := ValidSegment(conversation); err != nil {
		return layout{}, fmt.Errorf("conversation: %w", err)
	}
	return layout{dir: prefix + tenant + "/" + conversation + "/"}, nil
}

func (l layout) manifest() string { return l.dir + manifestName }

// folder is the prefix every snapshot key in dir (snapshotsDir,
// sessionsDir) of the conversation has.
func (l layout) folder(dir string) string { return l.dir + dir }

// snapshot is the key of the snapshot with a manifest-relative name.
func (l layout) snapshot(name string) string { return l.dir + name }

// snapshotName is a new snapshot's name in dir relative to the
// conversation's folder: sortable by creation time, unique by its random
// suffix.
func snapshotName(dir string, now time.Time, random string) string {
	return dir + now.UTC().Format(snapshotTimeFmt) + "-" + random + snapshotSuffix
}

// validSnapshotName reports whether name (from a manifest) names a
// snapshot of the same conversation in dir: "<dir><one segment>.tar.gz".
// A manifest can therefore never point a restore at another key.
func validSnapshotName(dir, name string) bool {
	return validObjectName(dir, name, snapshotSuffix)
}

// validObjectName reports whether name is "<dir><one segment><suffix>".
func validObjectName(dir, name, suffix string) bool {
	base, ok := strings.CutPrefix(name, dir)
	if !ok || !strings.HasSuffix(base, suffix) || len(base) == len(suffix) {
		return false
	}
	return ValidSegment(base) == nil
}

// objectName is a new object's name in dir with suffix, as snapshotName.
func objectName(dir string, now time.Time, random, suffix string) string {
	return dir + now.UTC().Format(snapshotTimeFmt) + "-" + random + suffix
}

// validPrefix checks Options.Prefix: empty, or segments each ending in "/".
func validPrefix(p string) error {
	if p == "" {
		return nil
	}
	if !strings.HasSuffix(p, "/") {
		return fmt.Errorf("prefix %q must end in /", p)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if err := ValidSegment(seg); err != nil {
			return fmt.Errorf("prefix %q: %w", p, err)
		}
	}
	return nil
}
