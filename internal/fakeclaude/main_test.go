package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// fakeclaude builds this command once per test binary.
func fakeclaude(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fakeclaude-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "claude")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build fakeclaude: %v", buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

type line struct {
	Type, Subtype string
	SessionID     string `json:"session_id"`
	IsError       bool   `json:"is_error"`
	Result        string
	MCPServers    []struct {
		Name, Status string
		Config       json.RawMessage
	} `json:"mcp_servers"`
	Message struct {
		Role    string
		Content []struct{ Type, Text string }
	}
	raw string
}

// runFake runs fakeclaude with the agent's flags, env and a HOME of its
// own, and returns its stdout lines, stderr and exit code.
func runFake(t *testing.T, env []string, stdin string, args ...string) ([]line, string, int) {
	t.Helper()
	return runFakeIn(t, t.TempDir(), "", env, stdin, args...)
}

// runFakeIn runs fakeclaude with HOME=home in directory dir (the test's if
// empty).
func runFakeIn(t *testing.T, home, dir string, env []string, stdin string, args ...string) ([]line, string, int) {
	t.Helper()
	argv := append([]string{"-p"}, args...)
	argv = append(argv, "--output-format", "stream-json", "--verbose")
	cmd := exec.Command(fakeclaude(t), argv...)
	cmd.Env = append(append([]string(nil), env...), "HOME="+home)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var lines []line
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var l line
		l.raw = sc.Text()
		_ = json.Unmarshal(sc.Bytes(), &l)
		lines = append(lines, l)
	}
	return lines, stderr.String(), code
}

func TestStreamShape(t *testing.T) {
	t.Parallel()
	lines, _, code := runFake(t, nil, "", "hello there")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("exit %d, %d lines", code, len(lines))
	}
	if !strings.HasPrefix(lines[0].raw, `{"type":"system","subtype":"init",`) ||
		!strings.HasPrefix(lines[1].raw, `{"type":"assistant","message":{`) ||
		!strings.HasPrefix(lines[2].raw, `{"type":"result","subtype":"success","is_error":false,"duration_ms":`) {
		t.Errorf("lines do not look like Claude Code's:\n%s\n%s\n%s", lines[0].raw, lines[1].raw, lines[2].raw)
	}
	sid := lines[0].SessionID
	if len(sid) != 36 || lines[1].SessionID != sid || lines[2].SessionID != sid {
		t.Errorf("session ids %q %q %q", sid, lines[1].SessionID, lines[2].SessionID)
	}
	if lines[2].Result != "fake reply to: hello there" {
		t.Errorf("result %q", lines[2].Result)
	}
	for _, field := range []string{`"total_cost_usd":`, `"num_turns":1`, `"usage":{"input_tokens":`} {
		if !strings.Contains(lines[2].raw, field) {
			t.Errorf("result line lacks %s: %s", field, lines[2].raw)
		}
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "mcp.json")
	if err := os.WriteFile(cfg, []byte(`{"mcpServers":{"docs":{"type":"http","url":"http://mcp.test/"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	first, _, code := runFakeIn(t, home, "", nil, "", "start")
	if code != 0 || len(first) != 3 {
		t.Fatalf("first run: exit %d, %d lines", code, len(first))
	}
	sid := first[0].SessionID
	lines, _, code := runFakeIn(t, home, "", nil, "", "resume me", "--resume", sid, "--allowedTools", "Bash(git:*)", "mcp__docs__search",
		"--append-system-prompt", "be brief", "--max-turns", "2", "--mcp-config", cfg)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if lines[0].SessionID != sid || lines[2].SessionID != sid {
		t.Errorf("--resume not kept: %q, want %q", lines[0].SessionID, sid)
	}
	if !strings.Contains(lines[0].raw, `"mcp__docs__search"`) {
		t.Errorf("allowed MCP tool not listed: %s", lines[0].raw)
	}
	if len(lines[0].MCPServers) != 1 || lines[0].MCPServers[0].Name != "docs" ||
		!strings.Contains(string(lines[0].MCPServers[0].Config), "mcp.test") {
		t.Errorf("mcp_servers = %+v", lines[0].MCPServers)
	}
	if !strings.Contains(lines[2].Result, "[system: be brief]") {
		t.Errorf("system prompt not seen: %q", lines[2].Result)
	}
}

func TestPromptFromStdin(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(fakeclaude(t), "-p", "--output-format", "stream-json", "--verbose")
	cmd.Env = []string{"HOME=" + t.TempDir()}
	cmd.Stdin = strings.NewReader("-from stdin")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), `"result":"fake reply to: -from stdin"`) {
		t.Fatalf("output %s, %v", out, err)
	}
}

func TestStreamJSONNeedsVerbose(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(fakeclaude(t), "-p", "x", "--output-format", "stream-json")
	cmd.Env = []string{"HOME=" + t.TempDir()}
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("run without --verbose = %v, want exit 1", err)
	}
}

func TestDirectives(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prompt   string
		wantExit int
		check    func(t *testing.T, lines []line, stderr string)
	}{
		{"exit:5", 5, func(t *testing.T, lines []line, _ string) {
			if lines[len(lines)-1].Type != "result" {
				t.Error("no result line before the exit")
			}
		}},
		{"stderr:oops", 0, func(t *testing.T, _ []line, stderr string) {
			if stderr != "oops\n" {
				t.Errorf("stderr %q", stderr)
			}
		}},
		{"raw:plain", 0, func(t *testing.T, lines []line, _ string) {
			if lines[1].raw != "plain" {
				t.Errorf("line 2 = %q", lines[1].raw)
			}
		}},
		{"bigline:200000", 0, func(t *testing.T, lines []line, _ string) {
			if len(lines[1].raw) != 200000 || lines[1].Type != "assistant" {
				t.Errorf("big line is %d bytes of type %q", len(lines[1].raw), lines[1].Type)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.prompt, func(t *testing.T) {
			t.Parallel()
			lines, stderr, code := runFake(t, nil, "", tt.prompt)
			if code != tt.wantExit {
				t.Fatalf("exit %d, want %d", code, tt.wantExit)
			}
			tt.check(t, lines, stderr)
		})
	}
}

func TestBedrockDirective(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		wantExit int
		wantSub  string
	}{
		{"success", 200, 0, "success"},
		{"upstream error", 403, 1, "error_during_execution"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var gotPath, gotBody string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				gotPath, gotBody = r.Method+" "+r.URL.EscapedPath(), string(b)
				mu.Unlock()
				w.WriteHeader(tt.status)
				if tt.status == 200 {
					io.WriteString(w, `{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"pong from bedrock"}],"model":"m","stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2}}`)
				} else {
					io.WriteString(w, `{"message":"denied"}`)
				}
			}))
			defer srv.Close()
			lines, _, code := runFake(t, []string{"ANTHROPIC_BEDROCK_BASE_URL=" + srv.URL}, "", "ping bedrock:anthropic.claude-3-5-sonnet-20240620-v1:0")
			if code != tt.wantExit {
				t.Fatalf("exit %d, want %d", code, tt.wantExit)
			}
			mu.Lock()
			defer mu.Unlock()
			if gotPath != "POST /model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke" {
				t.Errorf("request %q", gotPath)
			}
			var body struct {
				AnthropicVersion string `json:"anthropic_version"`
				Messages         []struct{ Role string }
			}
			if err := json.Unmarshal([]byte(gotBody), &body); err != nil || body.AnthropicVersion != "bedrock-2023-05-31" || len(body.Messages) != 1 {
				t.Errorf("body %s", gotBody)
			}
			res := lines[len(lines)-1]
			if res.Subtype != tt.wantSub || res.IsError != (tt.status != 200) {
				t.Errorf("result %s", res.raw)
			}
			if tt.status == 200 && !strings.Contains(lines[1].Message.Content[0].Text, "status 200: pong from bedrock") {
				t.Errorf("assistant %s", lines[1].raw)
			}
			if tt.status != 200 && !strings.Contains(res.Result, "status 403") {
				t.Errorf("result %q lacks the status", res.Result)
			}
		})
	}
}

func TestHTTPDirectiveUsesProxy(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " " + r.URL.String()
		io.WriteString(w, "via proxy")
	}))
	defer proxy.Close()
	lines, _, code := runFake(t, []string{"HTTP_PROXY=" + proxy.URL, "NO_PROXY=localhost,127.0.0.1"}, "", "http:http://upstream.test/x")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	select {
	case g := <-got:
		if g != "GET http://upstream.test/x" {
			t.Errorf("proxy saw %q", g)
		}
	default:
		t.Error("the request never reached the proxy")
	}
	if text := lines[1].Message.Content[0].Text; text != "http status 200: via proxy" {
		t.Errorf("assistant text %q", text)
	}
}

// TestSessionTranscript: a fresh run writes a transcript where Claude Code
// keeps it; --resume appends to it and sees the earlier turns; a resume of
// a session without a transcript (or in another directory: sessions are per
// project) fails as Claude Code does.
func TestSessionTranscript(t *testing.T) {
	t.Parallel()
	home, dir := t.TempDir(), t.TempDir()
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	first, _, code := runFakeIn(t, home, dir, nil, "", "first turn")
	if code != 0 || len(first) != 3 {
		t.Fatalf("first run: exit %d, %d lines", code, len(first))
	}
	sid := first[0].SessionID
	path := filepath.Join(home, ".claude", "projects", projectSlug(dir), sid+".jsonl")
	if !strings.HasPrefix(projectSlug(dir), "-") || strings.ContainsAny(projectSlug(dir), "/._") {
		t.Errorf("slug %q", projectSlug(dir))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("transcript not where Claude Code keeps it: %v", err)
	}
	var recs []transcriptLine
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r transcriptLine
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("transcript line %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 2 || recs[0].Type != "user" || recs[0].Message.Content != "first turn" ||
		recs[1].Type != "assistant" || recs[1].ParentUUID == nil || *recs[1].ParentUUID != recs[0].UUID ||
		recs[0].SessionID != sid || recs[0].CWD != dir {
		t.Fatalf("transcript %s", b)
	}

	second, _, code := runFakeIn(t, home, dir, nil, "", "second history:", "--resume", sid)
	if code != 0 || len(second) != 4 {
		t.Fatalf("resume: exit %d, %d lines", code, len(second))
	}
	if got := second[1].Message.Content[0].Text; got != "turn 1: first turn\n" {
		t.Errorf("history = %q", got)
	}
	if !strings.Contains(second[3].raw, `"num_turns":2`) {
		t.Errorf("result %s", second[3].raw)
	}
	third, _, _ := runFakeIn(t, home, dir, nil, "", "history:", "--resume", sid)
	if got := third[1].Message.Content[0].Text; got != "turn 1: first turn\nturn 2: second history:\n" {
		t.Errorf("history after two turns = %q", got)
	}

	for name, tc := range map[string]struct{ home, dir, id string }{
		"unknown id":      {home, dir, "0ce8853f-aabe-488c-bbc2-a05f10b1cdc3"},
		"other directory": {home, t.TempDir(), sid},
		"other home":      {t.TempDir(), dir, sid},
	} {
		lines, stderr, code := runFakeIn(t, tc.home, tc.dir, nil, "", "x", "--resume", tc.id)
		if code != 1 || len(lines) != 0 || stderr != "No conversation found with session ID: "+tc.id+"\n" {
			t.Errorf("%s: exit %d, %d stdout lines, stderr %q", name, code, len(lines), stderr)
		}
	}
}
