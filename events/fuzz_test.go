package events_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/workspaced/workspaced/events"
)

// The fuzz targets check three properties of every decoder:
//   - it never panics;
//   - a rejection is a *DecodeError wrapping ErrMalformed or
//     ErrUnsupportedVersion (the bus routes exactly those to the poison
//     queue), never anything else;
//   - an accepted message is valid and survives encode → decode unchanged.
//
// Seed corpora live in testdata/fuzz/<target>/.

func checkRejection(t *testing.T, err error) {
	t.Helper()
	var de *events.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("rejection %v (%T) is not a *DecodeError", err, err)
	}
	if !errors.Is(err, events.ErrMalformed) && !errors.Is(err, events.ErrUnsupportedVersion) {
		t.Fatalf("rejection %v wraps neither ErrMalformed nor ErrUnsupportedVersion", err)
	}
}

func FuzzDecodeRequested(f *testing.F) {
	f.Add([]byte(`{"schema_version":1,"conversation_id":"conv-42","request_id":"r1","tenant":"acme","requested_at":"2026-03-02T09:14:03Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := events.DecodeRequested(b)
		if err != nil {
			checkRejection(t, err)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted an invalid command: %v", err)
		}
		enc, err := events.EncodeRequested(c)
		if err != nil {
			t.Fatalf("cannot re-encode an accepted command: %v", err)
		}
		c2, err := events.DecodeRequested(enc)
		if err != nil {
			t.Fatalf("cannot decode its own encoding %s: %v", enc, err)
		}
		if !c2.RequestedAt.Equal(c.RequestedAt) || c2.ConversationID != c.ConversationID || c2.RequestID != c.RequestID || c2.Tenant != c.Tenant {
			t.Fatalf("round trip changed the command: %+v → %+v", c, c2)
		}
	})
}

func FuzzDecodeReleased(f *testing.F) {
	f.Add([]byte(`{"schema_version":1,"conversation_id":"conv-42","workspace_id":"ws-1","reason":"client","requested_at":"2026-03-02T09:14:03Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := events.DecodeReleased(b)
		if err != nil {
			checkRejection(t, err)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted an invalid command: %v", err)
		}
		enc, err := events.EncodeReleased(c)
		if err != nil {
			t.Fatalf("cannot re-encode an accepted command: %v", err)
		}
		c2, err := events.DecodeReleased(enc)
		if err != nil {
			t.Fatalf("cannot decode its own encoding %s: %v", enc, err)
		}
		if !c2.RequestedAt.Equal(c.RequestedAt) || c2.ConversationID != c.ConversationID || c2.WorkspaceID != c.WorkspaceID || c2.Reason != c.Reason {
			t.Fatalf("round trip changed the command: %+v → %+v", c, c2)
		}
	})
}

func FuzzDecodeTaskStateChange(f *testing.F) {
	f.Add([]byte(`{"version":"0","detail-type":"ECS Task State Change","source":"aws.ecs","detail":{"taskArn":"t","lastStatus":"RUNNING","version":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := events.DecodeTaskStateChange(b)
		if err != nil {
			checkRejection(t, err)
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("accepted an invalid envelope: %v", err)
		}
		_ = e.Detail.PrivateIPv4()
		enc, err := events.EncodeTaskStateChange(e)
		if err != nil {
			t.Fatalf("cannot re-encode an accepted envelope: %v", err)
		}
		e2, err := events.DecodeTaskStateChange(enc)
		if err != nil {
			t.Fatalf("cannot decode its own encoding %s: %v", enc, err)
		}
		enc2, err := events.EncodeTaskStateChange(e2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
		if e2.Detail.PrivateIPv4() != e.Detail.PrivateIPv4() || e2.Detail.Version != e.Detail.Version {
			t.Fatalf("round trip changed the envelope")
		}
	})
}
