package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/workspaced/workspaced/sse"
)

// printer renders one event of an execute stream.
type printer interface{ print(sse.Event) }

// jsonPrinter prints each event as one JSON line: {"id","event","data"},
// with data embedded as JSON when it is JSON.
type jsonPrinter struct{ w io.Writer }

func (p jsonPrinter) print(ev sse.Event) {
	line := struct {
		ID    string `json:"id,omitempty"`
		Event string `json:"event"`
		Data  any    `json:"data"`
	}{ID: ev.ID, Event: ev.Event, Data: ev.Data}
	if json.Valid([]byte(ev.Data)) {
		line.Data = json.RawMessage(ev.Data)
	}
	b, _ := json.Marshal(line)
	fmt.Fprintln(p.w, string(b))
}

// textPrinter renders a stream for a person: command output and Claude's
// text on stdout, everything about the run on stderr.
type textPrinter struct {
	stdout, stderr io.Writer
}

func (p *textPrinter) print(ev sse.Event) {
	switch ev.Event {
	case "run":
		var r struct {
			RunID string `json:"run_id"`
		}
		_ = json.Unmarshal([]byte(ev.Data), &r)
		fmt.Fprintf(p.stderr, "· run %s\n", r.RunID)
	case "status":
		var s struct {
			State       string `json:"state"`
			WorkspaceID string `json:"workspace_id"`
		}
		_ = json.Unmarshal([]byte(ev.Data), &s)
		if s.WorkspaceID != "" {
			fmt.Fprintf(p.stderr, "· %s (workspace %s)\n", s.State, short(s.WorkspaceID))
		} else {
			fmt.Fprintf(p.stderr, "· %s\n", s.State)
		}
	case "stdout":
		fmt.Fprintln(p.stdout, ev.Data)
	case "stdout_part":
		fmt.Fprint(p.stdout, ev.Data)
	case "stderr":
		fmt.Fprintln(p.stderr, ev.Data)
	case "stderr_part":
		fmt.Fprint(p.stderr, ev.Data)
	case "log":
		fmt.Fprintln(p.stderr, ev.Data)
	case "message":
		p.claude(ev.Data)
	case "done":
		var d struct {
			ExitCode   int    `json:"exit_code"`
			DurationMS int64  `json:"duration_ms"`
			Reason     string `json:"reason"`
		}
		_ = json.Unmarshal([]byte(ev.Data), &d)
		extra := ""
		if d.Reason != "" {
			extra = ", " + d.Reason
		}
		fmt.Fprintf(p.stderr, "· exit %d (%d ms%s)\n", d.ExitCode, d.DurationMS, extra)
	case "error":
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal([]byte(ev.Data), &e)
		fmt.Fprintf(p.stderr, "error: %s (%s)\n", e.Error.Message, e.Error.Code)
	default:
		fmt.Fprintf(p.stderr, "[%s] %s\n", ev.Event, ev.Data)
	}
}

// claude renders one Claude Code stream-json line.
func (p *textPrinter) claude(data string) {
	var m struct {
		Type      string  `json:"type"`
		Subtype   string  `json:"subtype"`
		SessionID string  `json:"session_id"`
		Model     string  `json:"model"`
		Result    string  `json:"result"`
		IsError   bool    `json:"is_error"`
		CostUSD   float64 `json:"total_cost_usd"`
		Message   struct {
			Content []struct {
				Type  string          `json:"type"`
				Text  string          `json:"text"`
				Name  string          `json:"name"`
				Input json.RawMessage `json:"input"`
			} `json:"content"`
		} `json:"message"`
	}
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		fmt.Fprintln(p.stderr, data)
		return
	}
	switch m.Type {
	case "system":
		fmt.Fprintf(p.stderr, "· session %s (%s)\n", m.SessionID, m.Model)
	case "assistant":
		for _, c := range m.Message.Content {
			switch c.Type {
			case "text":
				fmt.Fprintln(p.stdout, c.Text)
			case "tool_use":
				fmt.Fprintf(p.stderr, "→ %s %s\n", c.Name, truncate(string(c.Input), 200))
			}
		}
	case "result":
		status := "ok"
		if m.IsError {
			status = "error: " + m.Result
		}
		fmt.Fprintf(p.stderr, "· result %s ($%.4f)\n", status, m.CostUSD)
	}
}

func short(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
