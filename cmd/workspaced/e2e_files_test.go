package main

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/workspaced/workspaced/events/bus/bustest"
	"github.com/workspaced/workspaced/store"
)

// Files survive a release and a warm re-acquire: the release saves them to
// S3 (the emulator's), and the next workspace, claimed from the pool, gets
// them restored before it is handed over.
func TestFilesSurviveReleaseAndWarmReacquire(t *testing.T) {
	t.Parallel()
	emu := bustest.StartEmulator(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	bucket := "e2e-files-" + hex.EncodeToString(b)
	client := s3.NewFromConfig(emu.Config, func(o *s3.Options) { o.BaseEndpoint = aws.String(emu.URL); o.UsePathStyle = true })
	ctx := ctxFor(t, 3*time.Minute)
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	s := startStackDeps(t, map[string]string{
		"WORKSPACE_FILES_BUCKET": bucket, "AWS_ENDPOINT_URL_S3": emu.URL,
		"WARM_POOL_MIN_SIZE": "1", "WARM_POOL_CHECK_INTERVAL": "1s",
	}, appDeps{awsConfig: &emu.Config})
	if _, err := s.store.WaitPool(ctx, func(c store.PoolCounts) bool { return c.Available == 1 }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.exec(ctx, "conv-files", `{"kind":"command","argv":["sh","-c","echo kept > /workspace/note.txt"]}`); err != nil {
		t.Fatal(err)
	}
	first := s.waitConversation("conv-files", func(c store.Conversation) bool { return c.State == store.StateReady })
	if resp := s.request(http.MethodDelete, "/v1/conversations/conv-files"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE: %s", resp.Status)
	}
	s.waitConversation("conv-files", func(c store.Conversation) bool { return c.State == store.StateReleased })
	// The pool refilled meanwhile: the next acquire is warm.
	if _, err := s.store.WaitPool(ctx, func(c store.PoolCounts) bool { return c.Available == 1 }); err != nil {
		t.Fatal(err)
	}
	evs, err := s.exec(ctx, "conv-files", `{"kind":"command","argv":["cat","/workspace/note.txt"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := stdout(evs); !strings.Contains(got, "kept") {
		t.Fatalf("after re-acquire: %q (events %v)", got, names(evs))
	}
	second, _ := s.store.Conversation(ctx, "conv-files")
	if second.Workspace == first.Workspace {
		t.Fatalf("same workspace %s after release", first.Workspace)
	}
	if w, err := s.store.Workspace(ctx, second.Workspace); err != nil || !w.Pool {
		t.Fatalf("re-acquired workspace %+v (%v), want a pool workspace", w, err)
	}
}
