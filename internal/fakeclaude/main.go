// Command fakeclaude stands in for the Claude Code CLI in tests (the real
// CLI cannot run here: it needs Node and Bedrock). It accepts the flags the
// workspace agent passes —
//
//	-p/--print [prompt] --output-format stream-json --verbose
//	--resume <id> --allowedTools <tool>... --append-system-prompt <text>
//	--max-turns <n> --mcp-config <file>
//
// (the prompt is read from stdin when no positional prompt is given) — and
// prints real Claude Code stream-json lines on stdout: a system/init line
// (session_id, tools, model, mcp_servers, ...), assistant lines, and a final
// result line (subtype, is_error, duration_ms, num_turns, result,
// session_id, total_cost_usd, usage). With --mcp-config, the file's
// servers appear in the init line's mcp_servers, each with its
// configuration under "config".
//
// Sessions are kept as Claude Code keeps them: a transcript of JSON lines at
// $HOME/.claude/projects/<cwd, every character but letters and digits
// replaced by '-'>/<session id>.jsonl (for /workspace,
// ~/.claude/projects/-workspace/<id>.jsonl), one "user" line per prompt and
// one "assistant" line per reply, each with sessionId, uuid, parentUuid,
// cwd and timestamp. A fresh run gets a new UUID and a new transcript;
// --resume <id> keeps the id and appends to the transcript, and when there is
// none fails as Claude Code does: "No conversation found with session ID:
// <id>" on stderr, nothing on stdout, exit 1. num_turns in the result line
// counts the session's user turns.
//
// Without directives the reply echoes the prompt. Directives are
// whitespace-separated words of the prompt, run in order:
//
//	sleep:<dur>      start a child process that sleeps too, write both PIDs
//	                 (parent first, one per line) to $FAKECLAUDE_PIDFILE or
//	                 /tmp/fakeclaude.pids (or the pidfile: directive's path),
//	                 print "fakeclaude: sleeping ..." on stderr, then sleep
//	                 <dur> (a Go duration); for process-group kill tests
//	pidfile:<path>   where sleep: writes the PIDs, wherever it stands in the
//	                 prompt (the agent passes no environment of its own, so
//	                 tests use this)
//	exit:<n>         exit with code n after the result line
//	bigline:<bytes>  print one assistant line exactly <bytes> long
//	stderr:<text>    print text on stderr
//	raw:<text>       print text on stdout as is (not JSON)
//	bedrock:<model>  POST $ANTHROPIC_BEDROCK_BASE_URL/model/<model>/invoke
//	                 with an Anthropic messages body (plain HTTP, no signing:
//	                 the credential proxy signs); the reply text (or body) and
//	                 HTTP status go into an assistant line; a non-2xx status
//	                 makes the result an error and the exit code 1
//	http:<url>       GET url through $HTTP_PROXY (Go's default proxy rules)
//	                 and report status and body in an assistant line
//	env:             report the environment in an assistant line
//	argv:            report the command line in an assistant line
//	history:         report the session's earlier user turns, one per line
//	                 ("turn <n>: <prompt>"), in an assistant line
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

const model = "claude-sonnet-4-20250514"

// sleepChild is argv[1] of the child that sleep: starts.
const sleepChild = "__fakeclaude_sleep"

type flags struct {
	prompt       string
	hasPrompt    bool
	print        bool
	outputFormat string
	verbose      bool
	resume       string
	allowedTools []string
	systemPrompt string
	maxTurns     int
	mcpConfig    string
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == sleepChild {
		d, _ := time.ParseDuration(os.Args[2])
		time.Sleep(d)
		return
	}
	f, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeclaude:", err)
		os.Exit(2)
	}
	if !f.hasPrompt {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakeclaude: read prompt:", err)
			os.Exit(2)
		}
		f.prompt = string(b)
	}
	if f.outputFormat == "stream-json" && !f.verbose {
		fmt.Fprintln(os.Stderr, "Error: When using --print, --output-format=stream-json requires --verbose")
		os.Exit(1)
	}
	os.Exit(run(f))
}

func parse(args []string) (flags, error) {
	var f flags
	need := func(i int, name string) (string, error) {
		if i+1 >= len(args) {
			return "", fmt.Errorf("option %s needs a value", name)
		}
		return args[i+1], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var v string
		var err error
		switch a {
		case "-p", "--print":
			f.print = true
			continue
		case "--verbose":
			f.verbose = true
			continue
		case "--allowedTools", "--allowed-tools":
			for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				f.allowedTools = append(f.allowedTools, args[i])
			}
			continue
		case "--output-format", "--resume", "-r", "--append-system-prompt", "--max-turns", "--mcp-config":
			if v, err = need(i, a); err != nil {
				return f, err
			}
			i++
		case "--":
			if i+1 < len(args) {
				f.prompt, f.hasPrompt = args[i+1], true
			}
			return f, nil
		default:
			if strings.HasPrefix(a, "-") {
				return f, fmt.Errorf("unknown option %s", a)
			}
			if f.hasPrompt {
				return f, fmt.Errorf("unexpected argument %q", a)
			}
			f.prompt, f.hasPrompt = a, true
			continue
		}
		switch a {
		case "--output-format":
			f.outputFormat = v
		case "--resume", "-r":
			f.resume = v
		case "--append-system-prompt":
			f.systemPrompt = v
		case "--max-turns":
			if f.maxTurns, err = strconv.Atoi(v); err != nil {
				return f, fmt.Errorf("--max-turns %q: %w", v, err)
			}
		case "--mcp-config":
			f.mcpConfig = v
		}
	}
	return f, nil
}

// out writes stream-json lines.
type out struct{ w *bufio.Writer }

func (o out) line(v any) {
	b, _ := json.Marshal(v)
	o.w.Write(b)
	o.w.WriteByte('\n')
	o.w.Flush()
}

func run(f flags) int {
	start := time.Now()
	o := out{w: bufio.NewWriterSize(os.Stdout, 64<<10)}
	session := f.resume
	if session == "" {
		session = newUUID()
	}
	tr, err := openTranscript(session, f.resume != "")
	if err != nil {
		if errors.Is(err, errNoConversation) {
			fmt.Fprintf(os.Stderr, "No conversation found with session ID: %s\n", session)
			return 1
		}
		fmt.Fprintln(os.Stderr, "fakeclaude: session:", err)
		return 1
	}
	earlier := tr.prompts()
	if err := tr.append("user", f.prompt); err != nil {
		fmt.Fprintln(os.Stderr, "fakeclaude: session:", err)
		return 1
	}
	init := initLine{
		Type: "system", Subtype: "init", CWD: wd(), SessionID: session,
		Tools:          tools(f.allowedTools),
		MCPServers:     mcpServers(f.mcpConfig),
		Model:          model,
		PermissionMode: "default",
		SlashCommands:  []string{"compact", "context", "cost", "init", "review"},
		APIKeySource:   "none",
		OutputStyle:    "default",
		UUID:           newUUID(),
	}
	o.line(init)

	exitCode, isError, pidfile := 0, false, os.Getenv("FAKECLAUDE_PIDFILE")
	if pidfile == "" {
		pidfile = "/tmp/fakeclaude.pids"
	}
	reply := "fake reply to: " + f.prompt
	if f.systemPrompt != "" {
		reply += " [system: " + f.systemPrompt + "]"
	}
	for _, word := range strings.Fields(f.prompt) {
		if val, ok := strings.CutPrefix(word, "pidfile:"); ok {
			pidfile = val
		}
	}
	for _, word := range strings.Fields(f.prompt) {
		name, val, ok := strings.Cut(word, ":")
		if !ok {
			continue
		}
		switch name {
		case "sleep":
			d, err := time.ParseDuration(val)
			if err != nil {
				fmt.Fprintln(os.Stderr, "fakeclaude: sleep:", err)
				return 2
			}
			if err := sleepWithChild(d, pidfile); err != nil {
				fmt.Fprintln(os.Stderr, "fakeclaude: sleep:", err)
				return 2
			}
		case "exit":
			exitCode, _ = strconv.Atoi(val)
		case "bigline":
			n, _ := strconv.Atoi(val)
			o.w.Write(bigLine(session, n))
			o.w.WriteByte('\n')
			o.w.Flush()
		case "stderr":
			fmt.Fprintln(os.Stderr, val)
		case "raw":
			o.w.WriteString(val + "\n")
			o.w.Flush()
		case "bedrock":
			text, ok := invokeBedrock(val, f.prompt)
			o.line(assistant(session, text))
			if !ok {
				isError, exitCode = true, 1
			}
			reply = text
		case "http":
			o.line(assistant(session, httpGet(val)))
		case "env":
			o.line(assistant(session, strings.Join(os.Environ(), "\n")))
		case "argv":
			b, _ := json.Marshal(os.Args)
			o.line(assistant(session, string(b)))
		case "history":
			var h strings.Builder
			for i, p := range earlier {
				fmt.Fprintf(&h, "turn %d: %s\n", i+1, p)
			}
			o.line(assistant(session, h.String()))
		}
	}
	if !isError {
		o.line(assistant(session, reply))
	}
	if err := tr.append("assistant", reply); err != nil {
		fmt.Fprintln(os.Stderr, "fakeclaude: session:", err)
		return 1
	}
	o.line(result(session, reply, isError, time.Since(start), len(earlier)+1))
	return exitCode
}

func wd() string {
	d, _ := os.Getwd()
	return d
}

func tools(allowed []string) []string {
	t := []string{"Task", "Bash", "Glob", "Grep", "LS", "Read", "Edit", "MultiEdit", "Write", "WebFetch", "TodoWrite", "WebSearch"}
	for _, a := range allowed { // e.g. MCP tools the caller allowed
		if strings.HasPrefix(a, "mcp__") {
			t = append(t, a)
		}
	}
	return t
}

// mcpServer is an init line's mcp_servers entry; Config (not in the real
// CLI's output) echoes the server's configuration from --mcp-config.
type mcpServer struct {
	Name   string          `json:"name"`
	Status string          `json:"status"`
	Config json.RawMessage `json:"config,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// mcpServers reads an --mcp-config file ({"mcpServers": {name: config}}).
func mcpServers(file string) []mcpServer {
	servers := []mcpServer{}
	if file == "" {
		return servers
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return append(servers, mcpServer{Name: file, Status: "failed", Error: err.Error()})
	}
	var cfg struct {
		MCPServers map[string]json.RawMessage `json:"mcpServers"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return append(servers, mcpServer{Name: file, Status: "failed", Error: err.Error()})
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.MCPServers)) {
		servers = append(servers, mcpServer{Name: name, Status: "connected", Config: cfg.MCPServers[name]})
	}
	return servers
}

func assistant(session, text string) assistantLine {
	return assistantLine{
		Type: "assistant",
		Message: message{
			ID: "msg_" + strings.ReplaceAll(newUUID(), "-", "")[:24], Type: "message", Role: "assistant",
			Model:   model,
			Content: []content{{Type: "text", Text: text}},
			Usage:   newUsage(),
		},
		SessionID: session,
		UUID:      newUUID(),
	}
}

// bigLine returns an assistant line of exactly n bytes (or the smallest
// one possible when n is smaller).
func bigLine(session string, n int) []byte {
	base, _ := json.Marshal(assistant(session, ""))
	pad := n - len(base)
	if pad <= 0 {
		return base
	}
	b, _ := json.Marshal(assistant(session, strings.Repeat("x", pad)))
	return b
}

func newUsage() usage {
	return usage{InputTokens: 12, OutputTokens: 8, ServiceTier: "standard"}
}

func result(session, text string, isError bool, d time.Duration, turns int) resultLine {
	r := resultLine{
		Type: "result", Subtype: "success", IsError: isError,
		DurationMS: d.Milliseconds(), DurationAPIMS: d.Milliseconds(),
		NumTurns: turns, Result: text, SessionID: session,
		TotalCostUSD: 0.000123, Usage: newUsage(), PermissionDenials: []any{},
		UUID: newUUID(),
	}
	r.Usage.ServerToolUse = &serverToolUse{}
	if isError {
		r.Subtype = "error_during_execution"
	}
	return r
}

// sleepWithChild starts a child that sleeps for d (in this process group),
// records both PIDs, then sleeps for d itself.
func sleepWithChild(d time.Duration, pidfile string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(self, sleepChild, d.String())
	if err := child.Start(); err != nil {
		return err
	}
	pids := fmt.Sprintf("%d\n%d\n", os.Getpid(), child.Process.Pid)
	if err := os.WriteFile(pidfile, []byte(pids), 0o644); err != nil {
		return err
	}
	// Tests wait for this line (stderr is free-form in Claude Code too).
	fmt.Fprintf(os.Stderr, "fakeclaude: sleeping %s (pids %d %d)\n", d, os.Getpid(), child.Process.Pid)
	time.Sleep(d)
	_ = child.Wait()
	return nil
}

// invokeBedrock calls InvokeModel through the credential proxy. ok is false
// for a non-2xx status or a transport error.
func invokeBedrock(modelID, prompt string) (string, bool) {
	base := os.Getenv("ANTHROPIC_BEDROCK_BASE_URL")
	u, err := url.Parse(base)
	if err != nil || base == "" {
		return "bedrock: bad ANTHROPIC_BEDROCK_BASE_URL " + strconv.Quote(base), false
	}
	// As the AWS SDK does, escape the model ID as one path segment (":" too).
	prefix := strings.TrimSuffix(u.EscapedPath(), "/")
	esc := strings.ReplaceAll(url.PathEscape(modelID), ":", "%3A")
	u.Path = strings.TrimSuffix(u.Path, "/") + "/model/" + modelID + "/invoke"
	u.RawPath = prefix + "/model/" + esc + "/invoke"
	body, _ := json.Marshal(map[string]any{
		"anthropic_version": "bedrock-2023-05-31",
		"max_tokens":        256,
		"messages": []map[string]any{{
			"role": "user", "content": []map[string]any{{"type": "text", "text": prompt}},
		}},
	})
	req, err := http.NewRequest(http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return "bedrock: " + err.Error(), false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}} // direct: the base URL is the proxy
	resp, err := c.Do(req)
	if err != nil {
		return "bedrock: " + err.Error(), false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	text := string(b)
	var msg struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	if ok && json.Unmarshal(b, &msg) == nil && len(msg.Content) > 0 {
		text = msg.Content[0].Text
	}
	return fmt.Sprintf("bedrock status %d: %s", resp.StatusCode, text), ok
}

// httpGet fetches url with Go's default proxy behaviour (HTTP_PROXY,
// HTTPS_PROXY, NO_PROXY).
func httpGet(u string) string {
	c := &http.Client{Timeout: 60 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return "http error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return fmt.Sprintf("http status %d: %s", resp.StatusCode, b)
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// The stream-json lines, with the real CLI's field names and order.
type initLine struct {
	Type           string      `json:"type"`
	Subtype        string      `json:"subtype"`
	CWD            string      `json:"cwd"`
	SessionID      string      `json:"session_id"`
	Tools          []string    `json:"tools"`
	MCPServers     []mcpServer `json:"mcp_servers"`
	Model          string      `json:"model"`
	PermissionMode string      `json:"permissionMode"`
	SlashCommands  []string    `json:"slash_commands"`
	APIKeySource   string      `json:"apiKeySource"`
	OutputStyle    string      `json:"output_style"`
	UUID           string      `json:"uuid"`
}

type assistantLine struct {
	Type            string  `json:"type"`
	Message         message `json:"message"`
	ParentToolUseID *string `json:"parent_tool_use_id"`
	SessionID       string  `json:"session_id"`
	UUID            string  `json:"uuid"`
}

type message struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"`
	Role         string    `json:"role"`
	Model        string    `json:"model"`
	Content      []content `json:"content"`
	StopReason   *string   `json:"stop_reason"`
	StopSequence *string   `json:"stop_sequence"`
	Usage        usage     `json:"usage"`
}

type content struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type usage struct {
	InputTokens              int            `json:"input_tokens"`
	CacheCreationInputTokens int            `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int            `json:"cache_read_input_tokens"`
	OutputTokens             int            `json:"output_tokens"`
	ServerToolUse            *serverToolUse `json:"server_tool_use,omitempty"`
	ServiceTier              string         `json:"service_tier"`
}

type serverToolUse struct {
	WebSearchRequests int `json:"web_search_requests"`
}

type resultLine struct {
	Type              string  `json:"type"`
	Subtype           string  `json:"subtype"`
	IsError           bool    `json:"is_error"`
	DurationMS        int64   `json:"duration_ms"`
	DurationAPIMS     int64   `json:"duration_api_ms"`
	NumTurns          int     `json:"num_turns"`
	Result            string  `json:"result"`
	SessionID         string  `json:"session_id"`
	TotalCostUSD      float64 `json:"total_cost_usd"`
	Usage             usage   `json:"usage"`
	PermissionDenials []any   `json:"permission_denials"`
	UUID              string  `json:"uuid"`
}
