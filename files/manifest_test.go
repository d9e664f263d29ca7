package files

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func validManifest() Manifest {
	return Manifest{
		Format: FormatVersion, Encoding: EncodingTarGzip,
		Snapshot: "snapshots/20260102T030405.000000006Z-0123456789abcdef.tar.gz",
		Size:     10, SHA256: strings.Repeat("ab", 32), TarSize: 2048,
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Workspace: "w1", Tenant: "t", Conversation: "c",
		Listing: &Layer{Object: "snapshots/20260102T030405.000000006Z-0123456789abcdef.listing.json.gz", Size: 5, SHA256: strings.Repeat("ef", 32)},
	}
}

func TestDecodeManifest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*Manifest)
		ok   bool
	}{
		{name: "valid", mod: func(*Manifest) {}, ok: true},
		{name: "valid format 2", mod: func(m *Manifest) { m.Format, m.Listing = FormatTrees, nil }, ok: true},
		{name: "valid chain", mod: func(m *Manifest) {
			m.Deltas = []Layer{{Object: "snapshots/20260102T030406.000000006Z-0123456789abcdef.tar.gz", Size: 3, SHA256: m.SHA256}}
		}, ok: true},
		{name: "format 3 without a listing", mod: func(m *Manifest) { m.Listing = nil }},
		{name: "format 2 with layers", mod: func(m *Manifest) { m.Format = FormatTrees }},
		{name: "listing elsewhere", mod: func(m *Manifest) { m.Listing.Object = "snapshots/../../x/c/snapshots/a.listing.json.gz" }},
		{name: "listing is a snapshot", mod: func(m *Manifest) { m.Listing.Object = m.Snapshot }},
		{name: "delta elsewhere", mod: func(m *Manifest) {
			m.Deltas = []Layer{{Object: "sessions/x.tar.gz", Size: 3, SHA256: m.SHA256}}
		}},
		{name: "delta unsized", mod: func(m *Manifest) {
			m.Deltas = []Layer{{Object: "snapshots/x.tar.gz", SHA256: m.SHA256}}
		}},
		{name: "too many deltas", mod: func(m *Manifest) {
			m.Deltas = make([]Layer, maxDeltas+1)
			for i := range m.Deltas {
				m.Deltas[i] = Layer{Object: "snapshots/x.tar.gz", Size: 1, SHA256: m.SHA256}
			}
		}},
		{name: "future format", mod: func(m *Manifest) { m.Format = FormatVersion + 1 }},
		{name: "format 1 with a session", mod: func(m *Manifest) {
			m.Format = 1
			m.Session = &TreeSnapshot{Snapshot: "sessions/x.tar.gz", Size: 1, SHA256: m.SHA256}
		}},
		{name: "session elsewhere", mod: func(m *Manifest) {
			m.Session = &TreeSnapshot{Snapshot: "snapshots/x.tar.gz", Size: 1, SHA256: m.SHA256}
		}},
		{name: "no format", mod: func(m *Manifest) { m.Format = 0 }},
		{name: "other encoding", mod: func(m *Manifest) { m.Encoding = "tar+zstd" }},
		{name: "snapshot elsewhere", mod: func(m *Manifest) { m.Snapshot = "snapshots/../../../other/c/snapshots/x.tar.gz" }},
		{name: "snapshot is the manifest", mod: func(m *Manifest) { m.Snapshot = "manifest.json" }},
		{name: "zero size", mod: func(m *Manifest) { m.Size = 0 }},
		{name: "short digest", mod: func(m *Manifest) { m.SHA256 = "abcd" }},
		{name: "not hex", mod: func(m *Manifest) { m.SHA256 = strings.Repeat("zz", 32) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := validManifest()
			tt.mod(&m)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeManifest(b)
			if tt.ok {
				if err != nil || !reflect.DeepEqual(got, m) {
					t.Fatalf("decodeManifest = %+v, %v; want %+v", got, err, m)
				}
				return
			}
			if !errors.Is(err, ErrInvalidSnapshot) {
				t.Fatalf("decodeManifest = %v, want ErrInvalidSnapshot", err)
			}
		})
	}
	if _, err := decodeManifest([]byte("{")); !errors.Is(err, ErrInvalidSnapshot) {
		t.Fatalf("truncated JSON: %v", err)
	}
}

// FuzzDecodeManifest: a manifest read from S3 never panics the decoder,
// and one it accepts names snapshots of the same conversation only and
// survives a re-encode unchanged.
func FuzzDecodeManifest(f *testing.F) {
	v := validManifest()
	b, _ := json.Marshal(v)
	f.Add(b)
	v.Session = &TreeSnapshot{Snapshot: "sessions/20260102T030405.000000006Z-0123456789abcdef.tar.gz", Size: 3, SHA256: strings.Repeat("cd", 32),
		Listing: &Layer{Object: "sessions/20260102T030405.000000006Z-0123456789abcdef.listing.json.gz", Size: 4, SHA256: strings.Repeat("cd", 32)}}
	v.Digest, v.Reason = strings.Repeat("ef", 32), "checkpoint"
	b, _ = json.Marshal(v)
	f.Add(b)
	f.Add([]byte(`{"format":1,"snapshot":"snapshots/../x.tar.gz"}`))
	f.Add([]byte(`{"format":2,"session":{"snapshot":"snapshots/a.tar.gz"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeManifest(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidSnapshot) {
				t.Fatalf("error %v does not wrap ErrInvalidSnapshot", err)
			}
			return
		}
		if !validSnapshotName(snapshotsDir, m.Snapshot) || (m.Session != nil && !validSnapshotName(sessionsDir, m.Session.Snapshot)) {
			t.Fatalf("accepted %+v", m)
		}
		again, _ := json.Marshal(m)
		m2, err := decodeManifest(again)
		if err != nil || m2.Snapshot != m.Snapshot || (m.Session == nil) != (m2.Session == nil) {
			t.Fatalf("re-encoded manifest %s: %+v, %v", again, m2, err)
		}
	})
}
