package files_test

import (
	"strings"
	"testing"
	"time"

	"github.com/workspaced/workspaced/files"
)

// TestSessionAndUnchangedSaves: a save holds the Claude session
// ($HOME/.claude) beside the workspace and a restore puts both back; a
// save of an unchanged workspace uploads nothing and leaves the manifest
// alone; a change to the session alone uploads only a new session
// snapshot.
func TestSessionAndUnchangedSaves(t *testing.T) {
	t.Parallel()
	ws := newWorkspaces(t)
	c, bucket := newS3(t)
	st := newStore(t, c, bucket, ws.rt, nil)
	ctx := testCtx(t, 5*time.Minute)

	w1, w2 := ws.start(t), ws.start(t)
	ws.sh(t, w1, "echo work > /workspace/a.txt && mkdir -p $HOME/.claude/projects/-workspace && echo '{\"type\":\"user\"}' > $HOME/.claude/projects/-workspace/s1.jsonl")
	if err := st.Save(ctx, saveTarget("acme", "conv-s", w1)); err != nil {
		t.Fatal(err)
	}
	m1 := readManifest(t, c, bucket, "ws/acme/conv-s/manifest.json")
	if m1 == nil || m1.Session == nil || !strings.HasPrefix(m1.Session.Snapshot, "sessions/") || m1.Digest == "" {
		t.Fatalf("manifest %+v: want a session snapshot and digests", m1)
	}
	before := keys(t, c, bucket, "ws/acme/conv-s/")

	// Unchanged: nothing uploaded, the manifest is the same object.
	if err := st.Save(ctx, saveTarget("acme", "conv-s", w1)); err != nil {
		t.Fatal(err)
	}
	if m := readManifest(t, c, bucket, "ws/acme/conv-s/manifest.json"); !m.CreatedAt.Equal(m1.CreatedAt) {
		t.Errorf("unchanged save rewrote the manifest: %+v", m)
	}
	if after := keys(t, c, bucket, "ws/acme/conv-s/"); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("unchanged save wrote objects: %v, was %v", after, before)
	}

	// The session alone changes: the workspace snapshot is reused, the
	// session gets a delta.
	ws.sh(t, w1, "echo '{\"type\":\"assistant\"}' >> $HOME/.claude/projects/-workspace/s1.jsonl")
	if err := st.Save(ctx, saveTarget("acme", "conv-s", w1)); err != nil {
		t.Fatal(err)
	}
	m2 := readManifest(t, c, bucket, "ws/acme/conv-s/manifest.json")
	if m2.Snapshot != m1.Snapshot || len(m2.Deltas) != 0 || len(m2.Session.Deltas) != 1 || m2.Format != files.FormatVersion {
		t.Errorf("session-only change: workspace %s (was %s), session %s (was %s)", m2.Snapshot, m1.Snapshot, m2.Session.Snapshot, m1.Session.Snapshot)
	}

	cp, err := st.RestoreCheckpoint(ctx, restoreTarget("acme", "conv-s", w2))
	if err != nil || cp == nil || cp.Workspace != w1.ID || !cp.CreatedAt.Equal(m2.CreatedAt) {
		t.Fatalf("RestoreCheckpoint = %+v, %v", cp, err)
	}
	got := ws.sh(t, w2, "cat /workspace/a.txt $HOME/.claude/projects/-workspace/s1.jsonl")
	if got != "work\n{\"type\":\"user\"}\n{\"type\":\"assistant\"}\n" {
		t.Errorf("restored workspace and session: %q", got)
	}
}
