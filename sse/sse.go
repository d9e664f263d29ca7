// Package sse writes and reads Server-Sent Events (the text/event-stream
// format of the WHATWG HTML standard, §9.2). The workspace agent writes
// them, the backend relays them, wsctl reads them.
//
// Writer frames one event per call and flushes it at once, so a relay never
// holds an event back. Reader parses a stream into events exactly as a
// browser's EventSource would (CR, LF and CRLF line ends, comments, the
// "id", "event", "data" and "retry" fields), with a bound on the size of one
// event so a hostile or broken peer cannot make it buffer without limit.
package sse

// ContentType is the media type of an event stream.
const ContentType = "text/event-stream"

// Event is one server-sent event.
type Event struct {
	// ID is the event's id field. On the reading side it is the stream's
	// last event ID when the event was dispatched (the spec carries an id
	// over to later events that do not set one).
	ID string
	// Event is the event type. Writer omits the field when empty; Reader
	// reports "message" for events that set none, as the spec says.
	Event string
	// Data is the payload. Writer splits it into one data line per line;
	// Reader joins data lines with "\n".
	Data string
	// Retry is the reconnection time in milliseconds the server asked for,
	// 0 when absent.
	Retry int
	// IsComment marks a comment line (a heartbeat, for example) rather
	// than an event; Reader returns these only when Reader.Comments is set.
	// Comment is then the text after the colon.
	IsComment bool
	Comment   string
}
