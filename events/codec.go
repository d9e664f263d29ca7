package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Decoding failures, matched with errors.Is. Both mean "this message will
// never succeed": route it to the poison / dead-letter queue, do not retry.
var (
	ErrMalformed          = errors.New("malformed message")
	ErrUnsupportedVersion = errors.New("unsupported schema version")
)

// DecodeError describes why a payload was rejected. It wraps ErrMalformed or
// ErrUnsupportedVersion.
type DecodeError struct {
	// What is the kind of message being decoded ("workspace.requested", ...).
	What string
	Err  error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("decode %s: %v", e.What, e.Err) }
func (e *DecodeError) Unwrap() error { return e.Err }

// maxPayload bounds what the decoders accept; real messages are a few
// hundred bytes, SQS caps bodies at 256 KiB.
const maxPayload = 256 << 10

// EncodeRequested returns the JSON body of c, stamping the current
// SchemaVersion.
func EncodeRequested(c WorkspaceRequested) ([]byte, error) {
	c.SchemaVersion = SchemaVersion
	return json.Marshal(c)
}

// EncodeReleased returns the JSON body of c, stamping the current
// SchemaVersion.
func EncodeReleased(c WorkspaceReleased) ([]byte, error) {
	c.SchemaVersion = SchemaVersion
	return json.Marshal(c)
}

// EncodeTaskStateChange returns the JSON envelope of e.
func EncodeTaskStateChange(e TaskStateChange) ([]byte, error) { return json.Marshal(e) }

// DecodeRequested parses and validates a workspace.requested body.
func DecodeRequested(b []byte) (WorkspaceRequested, error) {
	var c WorkspaceRequested
	if err := decodeVersioned(TypeWorkspaceRequested, b, &c, &c.SchemaVersion); err != nil {
		return WorkspaceRequested{}, err
	}
	if err := c.Validate(); err != nil {
		return WorkspaceRequested{}, malformed(TypeWorkspaceRequested, err)
	}
	return c, nil
}

// DecodeReleased parses and validates a workspace.released body.
func DecodeReleased(b []byte) (WorkspaceReleased, error) {
	var c WorkspaceReleased
	if err := decodeVersioned(TypeWorkspaceReleased, b, &c, &c.SchemaVersion); err != nil {
		return WorkspaceReleased{}, err
	}
	if err := c.Validate(); err != nil {
		return WorkspaceReleased{}, malformed(TypeWorkspaceReleased, err)
	}
	return c, nil
}

// DecodeTaskStateChange parses and validates a task-state envelope. Unknown
// fields are ignored (AWS adds fields); missing required ones are not.
func DecodeTaskStateChange(b []byte) (TaskStateChange, error) {
	const what = "task state change"
	var e TaskStateChange
	if err := decodeJSON(what, b, &e); err != nil {
		return TaskStateChange{}, err
	}
	if err := e.Validate(); err != nil {
		return TaskStateChange{}, malformed(what, err)
	}
	return e, nil
}

// decodeVersioned decodes b into v and checks the schema version that
// decoding stored in *version.
func decodeVersioned(what string, b []byte, v any, version *int) error {
	if err := decodeJSON(what, b, v); err != nil {
		return err
	}
	if *version != SchemaVersion {
		return &DecodeError{What: what, Err: fmt.Errorf("%w: schema_version %d (this build reads %d)", ErrUnsupportedVersion, *version, SchemaVersion)}
	}
	return nil
}

// decodeJSON decodes exactly one JSON object from b into v.
func decodeJSON(what string, b []byte, v any) error {
	if len(b) > maxPayload {
		return malformed(what, fmt.Errorf("payload of %d bytes exceeds %d", len(b), maxPayload))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return malformed(what, err)
	}
	if dec.More() {
		return malformed(what, errors.New("trailing data after JSON object"))
	}
	return nil
}

func malformed(what string, err error) error {
	return &DecodeError{What: what, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
}
