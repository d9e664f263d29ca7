package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/workspaced/workspaced/events"
)

// wantErr classifies a decode result.
type wantErr int

const (
	ok wantErr = iota
	malformed
	unsupported
)

func checkDecodeErr(t *testing.T, what string, err error, want wantErr) {
	t.Helper()
	switch want {
	case ok:
		if err != nil {
			t.Fatalf("decode: %v, want success", err)
		}
		return
	case malformed:
		if !errors.Is(err, events.ErrMalformed) {
			t.Fatalf("decode: %v, want ErrMalformed", err)
		}
		if errors.Is(err, events.ErrUnsupportedVersion) {
			t.Fatalf("decode: %v is both malformed and unsupported", err)
		}
	case unsupported:
		if !errors.Is(err, events.ErrUnsupportedVersion) {
			t.Fatalf("decode: %v, want ErrUnsupportedVersion", err)
		}
	}
	var de *events.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("decode: %T is not a *DecodeError", err)
	}
	if de.What != what {
		t.Fatalf("DecodeError.What = %q, want %q", de.What, what)
	}
}

func TestDecodeRequested(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want wantErr
	}{
		{"valid", `{"schema_version":1,"conversation_id":"conv-42","request_id":"r1","tenant":"acme","requested_at":"2026-03-02T09:14:03Z"}`, ok},
		{"unknown field ignored", `{"schema_version":1,"conversation_id":"conv-42","request_id":"r1","requested_at":"2026-03-02T09:14:03Z","priority":7}`, ok},
		{"surrounding whitespace", " \n{\"schema_version\":1,\"conversation_id\":\"c\",\"request_id\":\"r\",\"requested_at\":\"2026-03-02T09:14:03+02:00\"}\n ", ok},
		{"schema version 2", `{"schema_version":2,"conversation_id":"conv-42","request_id":"r1","requested_at":"2026-03-02T09:14:03Z"}`, unsupported},
		{"schema version missing", `{"conversation_id":"conv-42","request_id":"r1","requested_at":"2026-03-02T09:14:03Z"}`, unsupported},
		{"empty body", ``, malformed},
		{"not json", `workspace please`, malformed},
		{"json null", `null`, unsupported},
		{"json array", `[1,2]`, malformed},
		{"truncated", `{"schema_version":1,"conversation_id":"conv-42"`, malformed},
		{"trailing object", `{"schema_version":1,"conversation_id":"c","request_id":"r","requested_at":"2026-03-02T09:14:03Z"}{}`, malformed},
		{"wrong type", `{"schema_version":"1","conversation_id":"c","request_id":"r","requested_at":"2026-03-02T09:14:03Z"}`, malformed},
		{"bad time", `{"schema_version":1,"conversation_id":"c","request_id":"r","requested_at":"yesterday"}`, malformed},
		{"missing request id", `{"schema_version":1,"conversation_id":"c","requested_at":"2026-03-02T09:14:03Z"}`, malformed},
		{"bad conversation id", `{"schema_version":1,"conversation_id":"a/b","request_id":"r","requested_at":"2026-03-02T09:14:03Z"}`, malformed},
		{"released body", `{"schema_version":1,"conversation_id":"c","reason":"client","requested_at":"2026-03-02T09:14:03Z"}`, malformed},
		{"oversized", `{"schema_version":1,"tenant":"` + strings.Repeat("x", 256<<10) + `"}`, malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := events.DecodeRequested([]byte(tt.body))
			checkDecodeErr(t, events.TypeWorkspaceRequested, err, tt.want)
			if tt.want != ok && c != (events.WorkspaceRequested{}) {
				t.Fatalf("on error DecodeRequested returned %+v, want the zero value", c)
			}
		})
	}
}

func TestDecodeReleased(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want wantErr
	}{
		{"valid", `{"schema_version":1,"conversation_id":"conv-42","workspace_id":"ws-1","reason":"idle_ttl","requested_at":"2026-03-02T09:14:03Z"}`, ok},
		{"empty workspace id", `{"schema_version":1,"conversation_id":"conv-42","workspace_id":"","reason":"client","requested_at":"2026-03-02T09:14:03Z"}`, ok},
		{"no workspace id", `{"schema_version":1,"conversation_id":"conv-42","reason":"shutdown","requested_at":"2026-03-02T09:14:03Z"}`, ok},
		{"unknown reason", `{"schema_version":1,"conversation_id":"conv-42","reason":"because","requested_at":"2026-03-02T09:14:03Z"}`, malformed},
		{"missing reason", `{"schema_version":1,"conversation_id":"conv-42","requested_at":"2026-03-02T09:14:03Z"}`, malformed},
		{"schema version 0", `{"schema_version":0,"conversation_id":"conv-42","reason":"client","requested_at":"2026-03-02T09:14:03Z"}`, unsupported},
		{"negative schema version", `{"schema_version":-1,"conversation_id":"conv-42","reason":"client","requested_at":"2026-03-02T09:14:03Z"}`, unsupported},
		{"float schema version", `{"schema_version":1.5,"conversation_id":"conv-42","reason":"client","requested_at":"2026-03-02T09:14:03Z"}`, malformed},
		{"garbage", "\x00\xff\xfe", malformed},
		{"reason as number", `{"schema_version":1,"conversation_id":"conv-42","reason":3,"requested_at":"2026-03-02T09:14:03Z"}`, malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := events.DecodeReleased([]byte(tt.body))
			checkDecodeErr(t, events.TypeWorkspaceReleased, err, tt.want)
			if tt.want != ok && c != (events.WorkspaceReleased{}) {
				t.Fatalf("on error DecodeReleased returned %+v, want the zero value", c)
			}
		})
	}
}

func TestEncodeStampsSchemaVersionAndRoundTrips(t *testing.T) {
	t.Parallel()
	req := validRequested()
	req.SchemaVersion = 0 // the encoder stamps the current version
	b, err := events.EncodeRequested(req)
	if err != nil {
		t.Fatal(err)
	}
	gotReq, err := events.DecodeRequested(b)
	if err != nil {
		t.Fatalf("decode encoded requested: %v", err)
	}
	if want := validRequested(); gotReq != want {
		t.Fatalf("round trip = %+v, want %+v", gotReq, want)
	}

	rel := validReleased()
	rel.SchemaVersion = 99
	b, err = events.EncodeReleased(rel)
	if err != nil {
		t.Fatal(err)
	}
	gotRel, err := events.DecodeReleased(b)
	if err != nil {
		t.Fatalf("decode encoded released: %v", err)
	}
	if want := validReleased(); gotRel != want {
		t.Fatalf("round trip = %+v, want %+v", gotRel, want)
	}
}

func TestEncodeUsesContractFieldNames(t *testing.T) {
	t.Parallel()
	b, err := events.EncodeReleased(validReleased())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schema_version":1,"conversation_id":"conv-42","workspace_id":"ws-1","reason":"idle_ttl","requested_at":"2026-03-02T09:14:03Z"}`
	if string(b) != want {
		t.Fatalf("EncodeReleased = %s, want %s", b, want)
	}
	b, err = events.EncodeRequested(validRequested())
	if err != nil {
		t.Fatal(err)
	}
	want = `{"schema_version":1,"conversation_id":"conv-42","request_id":"req-1","tenant":"acme","requested_at":"2026-03-02T09:14:03Z"}`
	if string(b) != want {
		t.Fatalf("EncodeRequested = %s, want %s", b, want)
	}
}

func TestDecodeErrorMessage(t *testing.T) {
	t.Parallel()
	_, err := events.DecodeRequested([]byte(`{"schema_version":7}`))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"workspace.requested", "schema_version 7"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
