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
	"github.com/workspaced/workspaced/files"
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

// manifestOf reads a conversation's manifest from S3 (nil if none).
func manifestOf(t *testing.T, ctx context.Context, client *s3.Client, bucket, conv string) *files.Manifest {
	t.Helper()
	// <tenant>/<conversation>/manifest.json, whatever the API key's tenant.
	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	key := ""
	for _, o := range list.Contents {
		if strings.HasSuffix(aws.ToString(o.Key), "/"+conv+"/manifest.json") {
			key = aws.ToString(o.Key)
		}
	}
	if key == "" {
		return nil
	}
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil
	}
	defer obj.Body.Close()
	var m files.Manifest
	if err := json.NewDecoder(obj.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// waitManifest polls (bounded) until the conversation's manifest satisfies
// cond: S3 has no notifications here.
func waitManifest(t *testing.T, ctx context.Context, client *s3.Client, bucket, conv string, cond func(*files.Manifest) bool) *files.Manifest {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := manifestOf(t, ctx, client, bucket, conv); m != nil && cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("manifest of %s: condition not met: %+v", conv, manifestOf(t, ctx, client, bucket, conv))
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestKilledMidRunRestoresLastCheckpoint: a workspace is checkpointed after
// a run ends and while a run goes on; docker kill mid-run loses only what
// came after the last checkpoint: the next execute gets a replacement
// holding the checkpoint's files and session, and a status event names
// the checkpoint restored.
func TestKilledMidRunRestoresLastCheckpoint(t *testing.T) {
	t.Parallel()
	emu := bustest.StartEmulator(t)
	ctx := ctxFor(t, 4*time.Minute)
	env := filesBucket(t, ctx, emu)
	bucket := env["WORKSPACE_FILES_BUCKET"]
	client := s3.NewFromConfig(emu.Config, func(o *s3.Options) { o.BaseEndpoint = aws.String(emu.URL); o.UsePathStyle = true })
	env["FILES_CHECKPOINT_INTERVAL"] = "2s"
	env["FILES_CHECKPOINT_TICK"] = "200ms"
	s := startStackDeps(t, env, appDeps{awsConfig: &emu.Config})
	cid := "conv-killed"

	// Run 1 ends: it is checkpointed (no release).
	sid, _ := claudeTurn(t, ctx, s, cid, "first turn", "")
	if _, err := s.exec(ctx, cid, `{"kind":"command","argv":["sh","-c","echo one > /workspace/one.txt"]}`); err != nil {
		t.Fatal(err)
	}
	// A checkpoint (not a release's save) holding the session. Which run's
	// end it followed is not asserted: a checkpoint that started before
	// the echo ended may already hold one.txt (a save is dated when it
	// starts, its trees read after), and then no later one is written.
	waitManifest(t, ctx, client, bucket, cid, func(m *files.Manifest) bool {
		return m.Reason == "checkpoint" && m.Session != nil
	})

	// Run 2 writes two.txt, then goes on: a checkpoint taken while it runs
	// holds it.
	resp, err := s.post(ctx, cid, `{"kind":"command","argv":["sh","-c","echo two > /workspace/two.txt; echo written; while :; do date > /workspace/tick.txt; sleep 1; done"]}`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := sse.NewReader(resp.Body)
	readUntilStdout(t, rd, "written")
	// The run keeps changing tick.txt, so every checkpoint of it writes a
	// manifest: one dated after "written" holds two.txt.
	written := time.Now()
	cp := waitManifest(t, ctx, client, bucket, cid, func(m *files.Manifest) bool {
		return m.Reason == "checkpoint" && m.CreatedAt.After(written)
	})
	conv := s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateReady })
	if err := s.docker.ContainerKill(ctx, conv.Workspace, "KILL"); err != nil {
		t.Fatal(err)
	}
	s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateLost })

	evs, err := s.exec(ctx, cid, `{"kind":"command","argv":["cat","/workspace/one.txt","/workspace/two.txt"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := stdout(evs); got != "one\ntwo\n" {
		t.Fatalf("replacement has %q (events %v)", got, names(evs))
	}
	restored := ""
	for _, ev := range evs {
		var st struct{ State, Checkpoint string }
		if ev.Event == "status" && json.Unmarshal([]byte(ev.Data), &st) == nil && st.State == "restored" {
			restored = st.Checkpoint
		}
	}
	// The last complete checkpoint: the one we saw, or a later one of the
	// same run (checkpoints go on every 2s until the kill).
	last := manifestOf(t, ctx, client, bucket, cid)
	if restored == "" || restored != last.CreatedAt.UTC().Format("20060102T150405.000000000Z") || last.CreatedAt.Before(cp.CreatedAt) {
		t.Fatalf("status names checkpoint %q; last manifest %s, seen %s", restored, last.CreatedAt, cp.CreatedAt)
	}
	_, texts := claudeTurn(t, ctx, s, cid, "history:", sid)
	if len(texts) == 0 || texts[0] != "turn 1: first turn\n" {
		t.Fatalf("session after kill saw %q", texts)
	}
}

// TestECSKilledMidRunRestoresLastCheckpoint: the same on the ECS path: the
// task's agent container dies mid-run (as on a lost instance); the next
// task gets the last checkpoint's files and session.
func TestECSKilledMidRunRestoresLastCheckpoint(t *testing.T) {
	t.Parallel()
	s := startECSStack(t, ecsOptions{docker: true, filesBucket: true, env: map[string]string{
		"FILES_CHECKPOINT_INTERVAL": "2s", "FILES_CHECKPOINT_TICK": "200ms",
	}})
	ctx := ctxFor(t, 4*time.Minute)
	client := s3.NewFromConfig(s.emu.Config, func(o *s3.Options) { o.BaseEndpoint = aws.String(s.emu.URL); o.UsePathStyle = true })
	bucket := s.cfg.Files.Bucket
	cid := "conv-ecs-killed"

	sid, _ := claudeTurn(t, ctx, s.stack, cid, "first turn", "")
	resp, err := s.post(ctx, cid, `{"kind":"command","argv":["sh","-c","echo two > /workspace/two.txt; echo written; while :; do date > /workspace/tick.txt; sleep 1; done"]}`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := sse.NewReader(resp.Body)
	readUntilStdout(t, rd, "written")
	written := time.Now()
	waitManifest(t, ctx, client, bucket, cid, func(m *files.Manifest) bool {
		return m.Reason == "checkpoint" && m.CreatedAt.After(written) && m.Session != nil
	})
	conv := s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateReady })
	if err := s.double.ExitContainer(conv.Workspace, "workspace-agent", 137); err != nil {
		t.Fatal(err)
	}
	s.waitConversation(cid, func(c store.Conversation) bool { return c.State == store.StateLost })

	evs, err := s.exec(ctx, cid, `{"kind":"command","argv":["cat","/workspace/two.txt"]}`)
	if err != nil {
		t.Fatal(err)
	}
	restored := ""
	for _, ev := range evs {
		var st struct{ State, Checkpoint string }
		if ev.Event == "status" && json.Unmarshal([]byte(ev.Data), &st) == nil && st.State == "restored" {
			restored = st.Checkpoint
		}
	}
	if got := stdout(evs); got != "two\n" || restored == "" {
		t.Fatalf("replacement task has %q, restored checkpoint %q (events %v)", got, restored, names(evs))
	}
	_, texts := claudeTurn(t, ctx, s.stack, cid, "history:", sid)
	if len(texts) == 0 || texts[0] != "turn 1: first turn\n" {
		t.Fatalf("session after the task died saw %q", texts)
	}
}
