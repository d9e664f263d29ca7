package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/workspaced/workspaced/events/bus/bustest"
	"github.com/workspaced/workspaced/sse"
	"github.com/workspaced/workspaced/store"
)

// filesBucket creates a fresh bucket in the emulator and returns the
// stack environment that saves files there.
func filesBucket(t *testing.T, ctx context.Context, emu *bustest.Emulator) map[string]string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	bucket := "e2e-sessions-" + hex.EncodeToString(b)
	client := s3.NewFromConfig(emu.Config, func(o *s3.Options) { o.BaseEndpoint = aws.String(emu.URL); o.UsePathStyle = true })
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"WORKSPACE_FILES_BUCKET": bucket, "AWS_ENDPOINT_URL_S3": emu.URL}
}

// claudeTurn runs one Claude turn (resuming session unless empty) and
// returns the session id and the assistant texts; a failed run fails the
// test with its events.
func claudeTurn(t *testing.T, ctx context.Context, s *stack, conv, prompt, session string) (string, []string) {
	t.Helper()
	req := map[string]string{"prompt": prompt}
	if session != "" {
		req["session_id"] = session
	}
	body, _ := json.Marshal(req)
	evs, err := s.exec(ctx, conv, string(body))
	if err != nil {
		t.Fatal(err)
	}
	sid, texts := claudeOutput(t, evs)
	if sid == "" || final(evs).Event != "done" || !strings.Contains(final(evs).Data, `"exit_code":0`) {
		t.Fatalf("turn %q of %s: events %v, final %s", prompt, conv, names(evs), final(evs).Data)
	}
	return sid, texts
}

// claudeOutput returns the session id and assistant texts of a Claude run.
func claudeOutput(t *testing.T, evs []sse.Event) (string, []string) {
	t.Helper()
	sid := ""
	var texts []string
	for _, ev := range evs {
		if ev.Event != "message" {
			continue
		}
		var m struct {
			Type      string
			SessionID string `json:"session_id"`
			Message   struct{ Content []struct{ Text string } }
		}
		if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
			t.Fatalf("message is not JSON: %s", ev.Data)
		}
		if sid == "" {
			sid = m.SessionID
		}
		if m.Type == "assistant" {
			for _, c := range m.Message.Content {
				texts = append(texts, c.Text)
			}
		}
	}
	return sid, texts
}

// TestSessionResumesAfterRecycling: a Claude session (the stand-in's
// transcript under ~/.claude) survives its workspace: after a release and
// re-acquire, and after the idle TTL recycled the workspace, --resume
// continues it in a new workspace and the transcript shows the earlier
// turns. Without the session save the resume fails with Claude Code's "No
// conversation found".
func TestSessionResumesAfterRecycling(t *testing.T) {
	t.Parallel()
	emu := bustest.StartEmulator(t)
	ctx := ctxFor(t, 4*time.Minute)
	env := filesBucket(t, ctx, emu)
	env["WORKSPACE_IDLE_TTL"] = "3s"
	env["GC_INTERVAL"] = "1s"
	s := startStackDeps(t, env, appDeps{awsConfig: &emu.Config})

	t.Run("release and re-acquire", func(t *testing.T) {
		sid, _ := claudeTurn(t, ctx, s, "conv-release", "first turn", "")
		first := s.waitConversation("conv-release", func(c store.Conversation) bool { return c.State == store.StateReady })
		if resp := s.request(http.MethodDelete, "/v1/conversations/conv-release"); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("DELETE: %s", resp.Status)
		}
		s.waitConversation("conv-release", func(c store.Conversation) bool { return c.State == store.StateReleased })
		got, texts := claudeTurn(t, ctx, s, "conv-release", "history:", sid)
		if got != sid || len(texts) == 0 || texts[0] != "turn 1: first turn\n" {
			t.Fatalf("resumed session %s saw %q, want turn 1 of %s", got, texts, sid)
		}
		if c, _ := s.store.Conversation(ctx, "conv-release"); c.Workspace == first.Workspace {
			t.Fatalf("same workspace %s after release", c.Workspace)
		}
	})

	t.Run("idle TTL", func(t *testing.T) {
		sid, _ := claudeTurn(t, ctx, s, "conv-idle", "first turn", "")
		_, _ = claudeTurn(t, ctx, s, "conv-idle", "second turn", sid)
		first := s.waitConversation("conv-idle", func(c store.Conversation) bool { return c.State == store.StateReady })
		// Nothing runs: the GC releases it after the idle TTL.
		s.waitConversation("conv-idle", func(c store.Conversation) bool { return c.State == store.StateReleased })
		_, texts := claudeTurn(t, ctx, s, "conv-idle", "history:", sid)
		if len(texts) == 0 || texts[0] != "turn 1: first turn\nturn 2: second turn\n" {
			t.Fatalf("resumed after idle TTL saw %q", texts)
		}
		if c, _ := s.store.Conversation(ctx, "conv-idle"); c.Workspace == first.Workspace {
			t.Fatalf("same workspace %s after the idle TTL", c.Workspace)
		}
	})

	t.Run("unknown session fails like Claude Code", func(t *testing.T) {
		evs, err := s.exec(ctx, "conv-release", `{"prompt":"x","session_id":"0ce8853f-aabe-488c-bbc2-a05f10b1cdc3"}`)
		if err != nil {
			t.Fatal(err)
		}
		var stderr string
		for _, ev := range evs {
			if ev.Event == "stderr" {
				stderr += ev.Data
			}
		}
		if !strings.Contains(stderr, "No conversation found with session ID: 0ce8853f-aabe-488c-bbc2-a05f10b1cdc3") ||
			!strings.Contains(final(evs).Data, `"exit_code":1`) {
			t.Fatalf("unknown session: events %v, stderr %q, final %s", names(evs), stderr, final(evs).Data)
		}
	})
}

// TestECSSessionResumesAfterRelease: the same on the ECS path (the double
// runs real task containers; S3 through the backend role's IAM policy):
// the session saved with the files on release is restored into the next
// task before it is ready, and --resume continues it.
func TestECSSessionResumesAfterRelease(t *testing.T) {
	t.Parallel()
	s := startECSStack(t, ecsOptions{docker: true, filesBucket: true})
	ctx := ctxFor(t, 4*time.Minute)
	cid := "conv-ecs-session"
	sid, _ := claudeTurn(t, ctx, s.stack, cid, "first turn", "")
	first := s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateReady })
	if resp := s.request(http.MethodDelete, "/v1/conversations/"+cid); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE: %s", resp.Status)
	}
	s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateReleased })
	got, texts := claudeTurn(t, ctx, s.stack, cid, "history:", sid)
	if got != sid || len(texts) == 0 || texts[0] != "turn 1: first turn\n" {
		t.Fatalf("resumed session %s saw %q, want turn 1 of %s", got, texts, sid)
	}
	if c, _ := s.store.Conversation(ctx, cid); c.Workspace == first.Workspace {
		t.Fatalf("same task %s after release", c.Workspace)
	}
}
