package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/workspaced/workspaced/sse"
)

// runIDHeader names the run of an execute response.
const runIDHeader = "Workspaced-Run-Id"

// Reconnection bounds: the wait doubles from reconnectMin to reconnectMax
// (or the server's retry hint, when it sent one), for at most
// reconnectAttempts breaks in a row without a new event.
const (
	reconnectMin      = 200 * time.Millisecond
	reconnectMax      = 5 * time.Second
	reconnectAttempts = 10
)

// runFollower prints a run's events once each, in order, across broken
// streams: it remembers the last event id and reconnects to the run's
// events with Last-Event-ID.
type runFollower struct {
	c      *client
	conv   string
	run    string // "" until known: a stream without it cannot be resumed
	last   int64
	p      printer
	stderr io.Writer
	sleep  func(context.Context, time.Duration) bool
}

// follow prints from body (an open stream, or nil to open the run's
// events) until the final event and returns the exit code it carries.
func (f *runFollower) follow(ctx context.Context, body io.ReadCloser) int {
	wait := reconnectMin
	for broken := 0; ; {
		if body == nil {
			rc, err := f.open(ctx)
			if err != nil {
				var fatal *fatalError
				if errors.As(err, &fatal) || ctx.Err() != nil {
					return errorf(f.stderr, "%v", err)
				}
				fmt.Fprintf(f.stderr, "wsctl: %v; retrying in %s\n", err, wait)
			} else {
				body = rc
			}
		}
		if body != nil {
			code, ended, progressed, hint := f.read(body)
			body.Close()
			body = nil
			if ended {
				return code
			}
			if f.run == "" {
				fmt.Fprintln(f.stderr, "wsctl: stream ended without a final event")
				return exitFailed
			}
			if progressed {
				broken, wait = 0, reconnectMin
			}
			if hint > 0 {
				wait = hint
			}
			fmt.Fprintf(f.stderr, "wsctl: stream of run %s broke after event %d; reconnecting in %s\n", f.run, f.last, wait)
		}
		if broken++; broken > reconnectAttempts {
			return errorf(f.stderr, "gave up reconnecting to run %s after %d attempts", f.run, reconnectAttempts)
		}
		if !f.sleep(ctx, wait) {
			return errorf(f.stderr, "interrupted")
		}
		wait = min(2*wait, reconnectMax)
	}
}

// read prints the events of one stream. ended is true at the final
// event (code is then its exit code); progressed when a new event came;
// hint is the server's retry hint, if any.
func (f *runFollower) read(body io.Reader) (code int, ended, progressed bool, hint time.Duration) {
	r := sse.NewReader(body)
	for {
		ev, err := r.Next()
		if err != nil {
			return 0, false, progressed, r.RetryHint()
		}
		if ev.ID != "" {
			n, err := strconv.ParseInt(ev.ID, 10, 64)
			if err == nil && n <= f.last {
				continue // printed already, before the stream broke
			}
			if err == nil {
				f.last = n
			}
		}
		progressed = true
		if ev.Event == "run" && f.run == "" {
			var d struct {
				RunID string `json:"run_id"`
			}
			if json.Unmarshal([]byte(ev.Data), &d) == nil {
				f.run = d.RunID
			}
		}
		f.p.print(ev)
		switch ev.Event {
		case "done":
			var d struct {
				ExitCode int `json:"exit_code"`
			}
			if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
				return errorf(f.stderr, "bad done event: %v", err), true, true, 0
			}
			return exitCodeOf(d.ExitCode), true, true, 0
		case "error":
			return exitFailed, true, true, 0
		}
	}
}

// fatalError is an answer reconnecting cannot change (4xx).
type fatalError struct{ msg string }

func (e *fatalError) Error() string { return e.msg }

// open opens the run's events after the last one printed.
func (f *runFollower) open(ctx context.Context) (io.ReadCloser, error) {
	path := "/v1/conversations/" + url.PathEscape(f.conv) + "/runs/" + url.PathEscape(f.run) + "/events"
	u := f.c.base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &fatalError{err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+f.c.key)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", strconv.FormatInt(f.last, 10))
	resp, err := f.c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	msg := apiErrorText(resp)
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		return nil, &fatalError{msg}
	}
	return nil, errors.New(msg)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// attach follows a conversation's run (the newest active one when none is
// named) from its first event.
func (c *client) attach(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	f := &runFollower{c: c, conv: args[0], p: &textPrinter{stdout: stdout, stderr: stderr}, stderr: stderr, sleep: sleepCtx}
	if len(args) == 2 {
		f.run = args[1]
	} else {
		rid, err := c.activeRun(ctx, args[0])
		if err != nil {
			return errorf(stderr, "%v", err)
		}
		f.run = rid
	}
	return f.follow(ctx, nil)
}

// activeRun returns the newest active run of conv.
func (c *client) activeRun(ctx context.Context, conv string) (string, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/conversations/"+url.PathEscape(conv)+"/runs", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(apiErrorText(resp))
	}
	var list struct {
		Runs []struct {
			RunID string `json:"run_id"`
			State string `json:"state"`
		} `json:"runs"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&list); err != nil {
		return "", fmt.Errorf("decode runs: %w", err)
	}
	for _, r := range list.Runs {
		if r.State == "starting" || r.State == "running" {
			return r.RunID, nil
		}
	}
	return "", fmt.Errorf("conversation %s has no active run (wsctl runs %s lists them)", conv, conv)
}
