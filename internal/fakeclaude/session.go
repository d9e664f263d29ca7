package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// errNoConversation is a --resume of a session without a transcript.
var errNoConversation = errors.New("no conversation")

// transcript is a session's JSON-lines file under ~/.claude/projects.
type transcript struct {
	path, session, cwd string
	lines              []transcriptLine
}

// transcriptLine is one line of a Claude Code session transcript (the
// fields the stand-in writes; the real CLI writes more).
type transcriptLine struct {
	ParentUUID  *string       `json:"parentUuid"`
	IsSidechain bool          `json:"isSidechain"`
	UserType    string        `json:"userType"`
	CWD         string        `json:"cwd"`
	SessionID   string        `json:"sessionId"`
	Version     string        `json:"version"`
	Type        string        `json:"type"`
	Message     transcriptMsg `json:"message"`
	UUID        string        `json:"uuid"`
	Timestamp   string        `json:"timestamp"`
}

type transcriptMsg struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// projectSlug is Claude Code's directory name for a working directory:
// every character but ASCII letters and digits becomes '-'.
func projectSlug(cwd string) string {
	b := []byte(cwd)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			b[i] = '-'
		}
	}
	return string(b)
}

// openTranscript reads session's transcript. resume requires it to exist
// (errNoConversation otherwise); a fresh session must not have one.
func openTranscript(session string, resume bool) (*transcript, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, err
	}
	cwd := wd()
	t := &transcript{
		path:    filepath.Join(home, ".claude", "projects", projectSlug(cwd), session+".jsonl"),
		session: session, cwd: cwd,
	}
	f, err := os.Open(t.path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && resume:
		return nil, errNoConversation
	case errors.Is(err, fs.ErrNotExist):
		return t, nil
	case err != nil:
		return nil, err
	case !resume:
		f.Close()
		return nil, fmt.Errorf("session %s already exists", session)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var l transcriptLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("transcript %s: %w", t.path, err)
		}
		t.lines = append(t.lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("transcript %s: %w", t.path, err)
	}
	if len(t.lines) == 0 {
		return nil, errNoConversation
	}
	return t, nil
}

// prompts returns the session's user turns so far.
func (t *transcript) prompts() []string {
	var p []string
	for _, l := range t.lines {
		if l.Type == "user" {
			p = append(p, l.Message.Content)
		}
	}
	return p
}

// append writes one line (and creates the file and its directory, 0700 as
// Claude Code does).
func (t *transcript) append(role, text string) error {
	l := transcriptLine{
		UserType: "external", CWD: t.cwd, SessionID: t.session, Version: "1.0.0-fake",
		Type: role, Message: transcriptMsg{Role: role, Content: text},
		UUID: newUUID(), Timestamp: time.Now().UTC().Format(time.RFC3339Nano),
	}
	if n := len(t.lines); n > 0 {
		parent := t.lines[n-1].UUID
		l.ParentUUID = &parent
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(t.path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(t.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	t.lines = append(t.lines, l)
	return f.Close()
}
