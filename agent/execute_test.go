package agent_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/workspaced/workspaced/agent/api"

	"github.com/workspaced/workspaced/agent"
	"github.com/workspaced/workspaced/agent/client"
	"github.com/workspaced/workspaced/sse"
)

func TestExecuteClaudeStreamsEventsInOrder(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	ctx := testContext(t)
	st, err := ta.client.Execute(ctx, api.ExecuteRequest{Prompt: "hello raw:not-json stderr:warning"})
	if err != nil {
		t.Fatal(err)
	}
	evs := collect(t, st)
	for i, ev := range evs {
		if ev.ID != strconv.Itoa(i+1) {
			t.Errorf("event %d has id %q, want %d", i, ev.ID, i+1)
		}
	}
	var stdout []string // the stdout events in order: type and JSON "type"
	var stderr []string
	for _, ev := range evs {
		switch ev.Event {
		case api.EventMessage:
			var m struct{ Type, Subtype string }
			if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
				t.Fatalf("message event is not JSON: %q", ev.Data)
			}
			stdout = append(stdout, "message:"+m.Type)
		case api.EventLog:
			stdout = append(stdout, "log:"+ev.Data)
		case api.EventStderr:
			stderr = append(stderr, ev.Data)
		case api.EventDone:
		default:
			t.Errorf("unexpected event %+v", ev)
		}
	}
	want := []string{"message:system", "log:not-json", "message:assistant", "message:result"}
	if !slices.Equal(stdout, want) {
		t.Errorf("stdout events = %q, want %q", stdout, want)
	}
	if !slices.Equal(stderr, []string{"warning"}) {
		t.Errorf("stderr events = %q", stderr)
	}
	d := doneOf(t, evs)
	if d.ExitCode != 0 || d.Reason != "" || d.DurationMS < 0 {
		t.Errorf("done = %+v", d)
	}
	if st.Done() == nil || *st.Done() != d {
		t.Errorf("Stream.Done() = %+v, want %+v", st.Done(), d)
	}
}

func TestExecuteReportsExitCode(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	tests := []struct {
		name string
		req  api.ExecuteRequest
		want int
	}{
		{"claude exit", api.ExecuteRequest{Prompt: "fail exit:3"}, 3},
		{"command exit", api.ExecuteRequest{Kind: api.KindCommand, Argv: []string{"sh", "-c", "exit 7"}}, 7},
		{"missing binary", api.ExecuteRequest{Kind: api.KindCommand, Argv: []string{"no-such-program-xyz"}}, 127},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { // sequential: one run at a time
			st, err := ta.client.Execute(testContext(t), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if d := doneOf(t, collect(t, st)); d.ExitCode != tt.want {
				t.Errorf("exit code = %d, want %d (%+v)", d.ExitCode, tt.want, d)
			}
		})
	}
}

func TestExecuteSplitsLongLinesWithoutLoss(t *testing.T) {
	t.Parallel()
	const size = 3<<20 + 12345
	ta := startAgent(t, nil)
	st, err := ta.client.Execute(testContext(t), api.ExecuteRequest{Prompt: "bigline:" + strconv.Itoa(size)})
	if err != nil {
		t.Fatal(err)
	}
	evs := collect(t, st)
	var line strings.Builder
	parts := 0
	for _, ev := range evs {
		if ev.Event == api.EventStdoutPart {
			parts++
			if len(ev.Data) > agent.DefaultMaxLineBytes {
				t.Errorf("part of %d bytes, over the limit", len(ev.Data))
			}
			line.WriteString(ev.Data)
			continue
		}
		if parts > 0 && line.Len() > 0 {
			if ev.Event != api.EventMessage {
				t.Fatalf("split line ends with a %q event, want message", ev.Event)
			}
			line.WriteString(ev.Data)
			break
		}
	}
	if parts < 3 {
		t.Fatalf("got %d parts, want the line split in at least 4 pieces", parts)
	}
	if line.Len() != size {
		t.Fatalf("reassembled line is %d bytes, want %d", line.Len(), size)
	}
	var m struct{ Type string }
	if err := json.Unmarshal([]byte(line.String()), &m); err != nil || m.Type != "assistant" {
		t.Fatalf("reassembled line is not the assistant message: %v", err)
	}
	if d := doneOf(t, evs); d.ExitCode != 0 {
		t.Errorf("done = %+v", d)
	}
}

func TestExecuteCommandRunsArgvWithoutShell(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	tests := []struct {
		name       string
		argv       []string
		wantStdout []string
		wantStderr []string
		wantExit   int
	}{
		{"no shell expansion", []string{"echo", "a;b", "$HOME", "*", "`id`"}, []string{"a;b $HOME * `id`"}, nil, 0},
		{"lines and streams", []string{"sh", "-c", "printf 'one\\ntwo\\r\\nthree'; echo err1 >&2; echo err2 >&2; exit 4"},
			[]string{"one", "two", "three"}, []string{"err1", "err2"}, 4},
		{"runs in the work dir", []string{"pwd"}, []string{ta.workDir}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := ta.client.Execute(testContext(t), api.ExecuteRequest{Kind: api.KindCommand, Argv: tt.argv})
			if err != nil {
				t.Fatal(err)
			}
			evs := collect(t, st)
			var out, errs []string
			for _, ev := range evs {
				switch ev.Event {
				case api.EventStdout:
					out = append(out, ev.Data)
				case api.EventStderr:
					errs = append(errs, ev.Data)
				case api.EventDone:
				default:
					t.Errorf("unexpected event %+v", ev)
				}
			}
			if !slices.Equal(out, tt.wantStdout) || !slices.Equal(errs, tt.wantStderr) {
				t.Errorf("stdout %q stderr %q, want %q %q", out, errs, tt.wantStdout, tt.wantStderr)
			}
			if d := doneOf(t, evs); d.ExitCode != tt.wantExit {
				t.Errorf("exit = %d, want %d", d.ExitCode, tt.wantExit)
			}
		})
	}
}

// sessionID returns the session_id of a run's first Claude Code line.
func sessionID(t *testing.T, evs []sse.Event) string {
	t.Helper()
	for _, ev := range evs {
		var m struct {
			SessionID string `json:"session_id"`
		}
		if ev.Event == api.EventMessage && json.Unmarshal([]byte(ev.Data), &m) == nil && m.SessionID != "" {
			return m.SessionID
		}
	}
	t.Fatalf("no session_id in %v", evs)
	return ""
}

// assistantTexts returns the text blocks of the assistant messages.
func assistantTexts(t *testing.T, evs []sse.Event) []string {
	t.Helper()
	var texts []string
	for _, ev := range evs {
		if ev.Event != api.EventMessage {
			continue
		}
		var m struct {
			Type    string
			Message struct {
				Content []struct{ Text string }
			}
		}
		if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
			t.Fatal(err)
		}
		if m.Type == "assistant" {
			for _, c := range m.Message.Content {
				texts = append(texts, c.Text)
			}
		}
	}
	return texts
}

func TestExecutePassesClaudeFlags(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	first, err := ta.client.Execute(testContext(t), api.ExecuteRequest{Prompt: "start a session"})
	if err != nil {
		t.Fatal(err)
	}
	req := api.ExecuteRequest{
		Prompt:       "argv:",
		SessionID:    sessionID(t, collect(t, first)),
		AllowedTools: []string{"Bash(git log:*)", "Read"},
		SystemPrompt: "be brief",
		MaxTurns:     3,
		MCPConfig:    json.RawMessage(`{"mcpServers":{"docs":{"type":"http","url":"https://mcp.example.com/mcp"}}}`),
	}
	st, err := ta.client.Execute(testContext(t), req)
	if err != nil {
		t.Fatal(err)
	}
	evs := collect(t, st)
	var argv []string
	if err := json.Unmarshal([]byte(assistantTexts(t, evs)[0]), &argv); err != nil {
		t.Fatal(err)
	}
	args := strings.Join(argv[1:], "\x00")
	for _, want := range [][]string{
		{"-p", "argv:"},
		{"--output-format", "stream-json", "--verbose"},
		{"--resume", req.SessionID},
		{"--append-system-prompt", "be brief"},
		{"--max-turns", "3"},
		{"--allowedTools", "Bash(git log:*)", "Read"},
	} {
		if !strings.Contains(args, strings.Join(want, "\x00")) {
			t.Errorf("argv %q lacks %q", argv, want)
		}
	}
	i := slices.Index(argv, "--mcp-config")
	if i < 0 || !filepath.IsAbs(argv[i+1]) {
		t.Fatalf("argv %q lacks --mcp-config <file>", argv)
	}
	var init struct {
		MCPServers []struct {
			Name   string
			Config json.RawMessage
		} `json:"mcp_servers"`
	}
	if err := json.Unmarshal([]byte(evs[0].Data), &init); err != nil {
		t.Fatal(err)
	}
	if len(init.MCPServers) != 1 || init.MCPServers[0].Name != "docs" ||
		!strings.Contains(string(init.MCPServers[0].Config), "mcp.example.com") {
		t.Errorf("init mcp_servers = %+v", init.MCPServers)
	}
}

func TestExecutePromptThatLooksLikeAFlag(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	st, err := ta.client.Execute(testContext(t), api.ExecuteRequest{Prompt: "--help me argv:"})
	if err != nil {
		t.Fatal(err)
	}
	evs := collect(t, st)
	texts := assistantTexts(t, evs)
	if len(texts) != 2 || texts[1] != "fake reply to: --help me argv:" {
		t.Fatalf("assistant texts = %q", texts)
	}
	if strings.Contains(texts[0], "--help") {
		t.Errorf("prompt passed in argv %s, want stdin", texts[0])
	}
}

func TestExecuteEnvironmentIsFixed(t *testing.T) {
	// Not parallel: it sets the test process's environment.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "must-not-leak")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAMUSTNOTLEAK")
	ta := startAgent(t, nil)
	st, err := ta.client.Execute(testContext(t), api.ExecuteRequest{Prompt: "env:"})
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Split(assistantTexts(t, collect(t, st))[0], "\n")
	slices.Sort(env)
	want := []string{
		"ANTHROPIC_BEDROCK_BASE_URL=http://127.0.0.1:8080",
		"CLAUDE_CODE_SKIP_BEDROCK_AUTH=1",
		"CLAUDE_CODE_USE_BEDROCK=1",
		"HOME=" + ta.home,
		"HTTPS_PROXY=http://127.0.0.1:8080",
		"HTTP_PROXY=http://127.0.0.1:8080",
		"NO_PROXY=localhost,127.0.0.1",
		"PATH=" + agent.DefaultPath,
	}
	if !slices.Equal(env, want) {
		t.Errorf("run environment =\n%s\nwant\n%s", strings.Join(env, "\n"), strings.Join(want, "\n"))
	}
}

func TestExecuteRejectsBadRequests(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	tests := []struct {
		name string
		body string
	}{
		{"malformed JSON", `{"prompt": `},
		{"not an object", `"hello"`},
		{"trailing data", `{"prompt":"a"} {}`},
		{"missing prompt", `{}`},
		{"blank prompt", `{"prompt":"  "}`},
		{"command without argv", `{"kind":"command"}`},
		{"unknown kind", `{"kind":"python","prompt":"x"}`},
		{"negative timeout", `{"prompt":"x","timeout_s":-1}`},
		{"negative max_turns", `{"prompt":"x","max_turns":-2}`},
		{"mcp_config not an object", `{"prompt":"x","mcp_config":[1]}`},
		{"bad session id", `{"prompt":"x","session_id":"--evil"}`},
		{"tool looks like a flag", `{"prompt":"x","allowed_tools":["--dangerously-skip-permissions"]}`},
		{"wrong type", `{"prompt":42}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, body := postRaw(t, ta, "/execute", tt.body)
			if status != 400 {
				t.Fatalf("status = %d, want 400 (%s)", status, body)
			}
			var e api.Error
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
				t.Fatalf("body %q is not a JSON error", body)
			}
		})
	}
}

func TestClientMapsErrors(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	_, err := ta.client.Execute(testContext(t), api.ExecuteRequest{Kind: "bogus"})
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Message == "" {
		t.Fatalf("Execute error = %v, want *APIError 400", err)
	}
	h, err := ta.client.Health(testContext(t))
	if err != nil || h.Status != "ok" || h.Version != "test" || h.Busy {
		t.Fatalf("Health = %+v, %v", h, err)
	}
}

// TestExecuteCoalescingHoldsNothingBack: output is written in bursts
// (flushed when no further line waits), yet a line followed by silence is
// delivered during the silence: the run sleeps for ten minutes after it,
// so the test only passes (within its deadline) if the line came before
// the run ended; and every line of the burst arrives, in order.
func TestExecuteCoalescingHoldsNothingBack(t *testing.T) {
	t.Parallel()
	ta := startAgent(t, nil)
	ctx, cancel := contextWithCancel(t)
	defer cancel()
	st, err := ta.client.Execute(ctx, api.ExecuteRequest{Kind: api.KindCommand,
		Argv: []string{"sh", "-c", "seq 1 300; echo quiet; exec sleep 600"}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs := waitFor(t, st, func(ev sse.Event) bool { return ev.Event == api.EventStdout && ev.Data == "quiet" })
	var lines []string
	for _, ev := range evs {
		if ev.Event == api.EventStdout {
			lines = append(lines, ev.Data)
		}
	}
	if len(lines) != 301 || lines[0] != "1" || lines[299] != "300" {
		t.Fatalf("got %d stdout lines (%q…), want 1..300 then quiet", len(lines), lines[:min(3, len(lines))])
	}
}
