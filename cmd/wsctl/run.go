package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// client talks to the workspaced HTTP API.
type client struct {
	base *url.URL
	key  string
	http *http.Client
}

// run parses the command line and runs one command; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wsctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	defURL := getenv("WORKSPACED_URL")
	if defURL == "" {
		defURL = "http://127.0.0.1:8000"
	}
	rawURL := fs.String("url", defURL, "workspaced API base URL")
	key := fs.String("key", getenv("WORKSPACED_API_KEY"), "API key")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	base, err := url.Parse(*rawURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") {
		return errorf(stderr, "--url %q: want http(s)://host[:port]", *rawURL)
	}
	if *key == "" {
		fmt.Fprintln(stderr, "wsctl: no API key: set WORKSPACED_API_KEY or pass --key")
		return exitUsage
	}
	c := &client{base: base, key: *key, http: &http.Client{}}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "exec":
		return c.exec(ctx, rest, stdout, stderr)
	case "status":
		return c.conversation(ctx, http.MethodGet, rest, stdout, stderr)
	case "release":
		return c.conversation(ctx, http.MethodDelete, rest, stdout, stderr)
	case "pool":
		return c.getJSON(ctx, "/v1/pool", stdout, stderr)
	case "runs":
		if len(rest) != 1 {
			fmt.Fprint(stderr, usage)
			return exitUsage
		}
		return c.getJSON(ctx, "/v1/conversations/"+url.PathEscape(rest[0])+"/runs", stdout, stderr)
	case "attach":
		return c.attach(ctx, rest, stdout, stderr)
	case "selftest":
		return c.selfTest(ctx, rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "wsctl: unknown command %q\n", cmd)
		fs.Usage()
		return exitUsage
	}
}

// executeRequest is the body of POST /v1/conversations/{id}/execute.
type executeRequest struct {
	Kind     string   `json:"kind,omitempty"`
	Prompt   string   `json:"prompt,omitempty"`
	Argv     []string `json:"argv,omitempty"`
	TimeoutS int      `json:"timeout_s,omitempty"`
}

func (c *client) exec(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print raw events as JSON lines")
	timeout := fs.Int("timeout", 0, "run timeout in seconds (0: the agent's default)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) < 2 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	conv, rest := rest[0], rest[1:]
	req := executeRequest{TimeoutS: *timeout}
	// flag stops at "--" and drops it; find out whether it was there.
	if dash := indexOf(args, "--"); dash >= 0 && dash < len(args)-1 {
		req.Kind, req.Argv = "command", args[dash+1:]
	} else {
		req.Kind, req.Prompt = "claude", strings.Join(rest, " ")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return errorf(stderr, "encode request: %v", err)
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/conversations/"+url.PathEscape(conv)+"/execute", strings.NewReader(string(body)))
	if err != nil {
		return errorf(stderr, "%v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errorf(stderr, "%s", apiErrorText(resp))
	}
	var p printer
	if *asJSON {
		p = jsonPrinter{stdout}
	} else {
		p = &textPrinter{stdout: stdout, stderr: stderr}
	}
	// The run outlives a broken stream: reconnect to it, printing nothing
	// twice.
	f := &runFollower{c: c, conv: conv, run: resp.Header.Get(runIDHeader), p: p, stderr: stderr, sleep: sleepCtx}
	return f.follow(ctx, resp.Body)
}

func indexOf(ss []string, s string) int {
	for i, v := range ss {
		if v == s {
			return i
		}
	}
	return -1
}

// exitCodeOf maps a run's exit code (-1: killed by a signal) to ours.
func exitCodeOf(code int) int {
	if code < 0 || code > 255 {
		return exitFailed
	}
	return code
}

func (c *client) conversation(ctx context.Context, method string, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	resp, err := c.do(ctx, method, "/v1/conversations/"+url.PathEscape(args[0]), nil)
	if err != nil {
		return errorf(stderr, "%v", err)
	}
	defer resp.Body.Close()
	return printJSONResponse(resp, stdout, stderr)
}

func (c *client) getJSON(ctx context.Context, path string, stdout, stderr io.Writer) int {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return errorf(stderr, "%v", err)
	}
	defer resp.Body.Close()
	return printJSONResponse(resp, stdout, stderr)
}

func printJSONResponse(resp *http.Response, stdout, stderr io.Writer) int {
	if resp.StatusCode/100 != 2 {
		return errorf(stderr, "%s", apiErrorText(resp))
	}
	var v any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&v); err != nil {
		return errorf(stderr, "decode response: %v", err)
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(stdout, string(out))
	return exitOK
}

func (c *client) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	u := c.base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u.Redacted(), err)
	}
	return resp, nil
}

// apiErrorText renders the API's JSON error body, or the status line.
func apiErrorText(resp *http.Response) string {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &body) == nil && body.Error.Message != "" {
		return fmt.Sprintf("%s: %s (%s)", resp.Status, body.Error.Message, body.Error.Code)
	}
	return resp.Status
}
