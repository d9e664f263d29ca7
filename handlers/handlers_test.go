package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/workspaced/workspaced/events"
	"github.com/workspaced/workspaced/events/bus"
	"github.com/workspaced/workspaced/handlers"
	"github.com/workspaced/workspaced/internal/redistest"
	"github.com/workspaced/workspaced/sse"
	"github.com/workspaced/workspaced/store"
	"github.com/workspaced/workspaced/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	keyA = "tenant-a:key-a-0123456789abcdef"
	keyB = "key-b-0123456789abcdef"
)

// noTransports fails every dial: these tests never reach a workspace.
type noTransports struct{}

func (noTransports) Transport(string) (http.RoundTripper, error) {
	return nil, errors.New("no workspaces in this test")
}

type env struct {
	srv       *handlers.Server
	http      *httptest.Server
	requested <-chan *message.Message
	store     *store.Store
	rdb       *redis.Client // the store's client: tests stop Redis through it
}

// apiStore gives the API the store with Watch answering handlers.Watcher
// (as cmd/workspaced wires it).
type apiStore struct{ *store.Store }

func (s apiStore) Watch(ctx context.Context, cid string) (handlers.Watcher, error) {
	w, err := s.Store.Watch(ctx, cid)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// newEnv runs the API on a real Redis and the gochannel bus, with no
// workers: requests can be made, provisioning never completes.
func newEnv(t *testing.T, provision time.Duration, mods ...func(*handlers.Options)) *env {
	t.Helper()
	rs := redistest.Start(t)
	storetest.Audit(t, rs, "test:")
	return newEnvOn(t, rs, provision, mods...)
}

// newEnvOn is newEnv on a given server, without the key audit (for tests
// that stop the server).
func newEnvOn(t *testing.T, rs *redistest.Server, provision time.Duration, mods ...func(*handlers.Options)) *env {
	t.Helper()
	rdb := rs.Client(t)
	st := store.New(rdb, store.Options{Prefix: "test:"})
	b, err := bus.New(context.Background(), bus.Options{Kind: bus.KindGoChannel, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	subCtx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	requested, err := b.Subscriber().Subscribe(subCtx, events.TopicWorkspaceRequested)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := handlers.ParseKeys(keyA+","+keyB, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := handlers.Options{
		Store: apiStore{st}, Commands: b.Commands(), Transports: noTransports{}, Keys: keys,
		Checks:           map[string]handlers.Check{"redis": st.Ping},
		ProvisionTimeout: provision,
		Heartbeat:        time.Hour,
		MaxBodyBytes:     1 << 10,
		Logger:           slog.New(slog.DiscardHandler),
	}
	for _, mod := range mods {
		mod(&opts)
	}
	srv, err := handlers.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { stopServer(t, srv) })
	t.Cleanup(hs.Close)
	return &env{srv: srv, http: hs, requested: requested, store: st, rdb: rdb}
}

func (e *env) do(t *testing.T, method, path, key string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// nextRequested waits for the next workspace.requested published, acks
// and decodes it.
func (e *env) nextRequested(t *testing.T) (*message.Message, events.WorkspaceRequested) {
	t.Helper()
	select {
	case msg := <-e.requested:
		msg.Ack()
		cmd, err := events.DecodeRequested(msg.Payload)
		if err != nil {
			t.Fatal(err)
		}
		return msg, cmd
	case <-time.After(5 * time.Second):
		t.Fatal("workspace.requested was not published")
		return nil, events.WorkspaceRequested{}
	}
}

func secret(entry string) string {
	_, k, ok := strings.Cut(entry, ":")
	if ok {
		return k
	}
	return entry
}

// errorCode reads a JSON error body.
func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error response content type %q, want JSON", ct)
	}
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	if body.Error.Message == "" {
		t.Errorf("error body has no message")
	}
	return body.Error.Code
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, time.Second)
	// keyA owns "owned".
	if _, err := e.store.ClaimConversation(context.Background(), "owned", "k_placeholder", "x"); err != nil {
		t.Fatal(err)
	}
	execOwned := e.do(t, http.MethodGet, "/v1/conversations/mine", secret(keyA), nil)
	if execOwned.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown conversation: %d", execOwned.StatusCode)
	}
	big := `{"kind":"command","argv":["echo","` + strings.Repeat("x", 2<<10) + `"]}`
	tests := []struct {
		name       string
		method     string
		path       string
		key        string
		body       string
		chunked    bool
		wantStatus int
		wantCode   string
	}{
		{"no key", http.MethodGet, "/v1/pool", "", "", false, 401, "unauthorized"},
		{"wrong key", http.MethodGet, "/v1/pool", "nope-0123456789abcdef", "", false, 401, "unauthorized"},
		{"key with tenant prefix is not the key", http.MethodGet, "/v1/pool", keyA, "", false, 401, "unauthorized"},
		{"bad id", http.MethodPost, "/v1/conversations/-bad/execute", secret(keyA), `{"prompt":"hi"}`, false, 400, "bad_request"},
		{"id too long", http.MethodGet, "/v1/conversations/" + strings.Repeat("a", 129), secret(keyA), "", false, 400, "bad_request"},
		{"id with dot", http.MethodDelete, "/v1/conversations/a.b", secret(keyA), "", false, 400, "bad_request"},
		{"malformed json", http.MethodPost, "/v1/conversations/c1/execute", secret(keyA), `{"prompt":`, false, 400, "bad_request"},
		{"trailing data", http.MethodPost, "/v1/conversations/c1/execute", secret(keyA), `{"prompt":"a"} {}`, false, 400, "bad_request"},
		{"unknown field", http.MethodPost, "/v1/conversations/c1/execute", secret(keyA), `{"prompt":"a","promt":"b"}`, false, 400, "bad_request"},
		{"no prompt", http.MethodPost, "/v1/conversations/c1/execute", secret(keyA), `{}`, false, 400, "bad_request"},
		{"command without argv", http.MethodPost, "/v1/conversations/c1/execute", secret(keyA), `{"kind":"command"}`, false, 400, "bad_request"},
		{"unknown kind", http.MethodPost, "/v1/conversations/c1/execute", secret(keyA), `{"kind":"shell","prompt":"x"}`, false, 400, "bad_request"},
		{"oversized body", http.MethodPost, "/v1/conversations/c1/execute", secret(keyA), big, false, 413, "request_too_large"},
		{"oversized chunked body", http.MethodPost, "/v1/conversations/c1/execute", secret(keyA), big, true, 413, "request_too_large"},
		{"another key's conversation: get", http.MethodGet, "/v1/conversations/owned", secret(keyA), "", false, 404, "not_found"},
		{"another key's conversation: delete", http.MethodDelete, "/v1/conversations/owned", secret(keyA), "", false, 404, "not_found"},
		{"another key's conversation: execute", http.MethodPost, "/v1/conversations/owned/execute", secret(keyB), `{"prompt":"hi"}`, false, 404, "not_found"},
		{"unknown route", http.MethodGet, "/v1/nothing", secret(keyA), "", false, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(strings.NewReader(tt.body)) // unknown length: sent chunked
				}
			}
			resp := e.do(t, tt.method, tt.path, tt.key, body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if code := errorCode(t, resp); code != tt.wantCode {
				t.Errorf("code %q, want %q", code, tt.wantCode)
			}
		})
	}
	select {
	case msg := <-e.requested:
		t.Fatalf("a refused request published %s", msg.Payload)
	default:
	}
}

// readStream collects events until the stream ends.
func readStream(t *testing.T, r io.Reader) []sse.Event {
	t.Helper()
	var evs []sse.Event
	rd := sse.NewReader(r)
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return evs
		}
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		evs = append(evs, ev)
	}
}

func TestExecuteWithoutWorkersTimesOut(t *testing.T) {
	e := newEnv(t, 300*time.Millisecond)
	resp := e.do(t, http.MethodPost, "/v1/conversations/c1/execute", secret(keyA), strings.NewReader(`{"kind":"command","argv":["true"]}`))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != sse.ContentType {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rid := resp.Header.Get(handlers.RunIDHeader)
	evs := readStream(t, resp.Body)
	if len(evs) != 3 || evs[0].Event != "run" || evs[1].Event != "status" || evs[2].Event != "error" {
		t.Fatalf("events %+v, want run, status, error", evs)
	}
	if want := `{"run_id":"` + rid + `","conversation_id":"c1"}`; rid == "" || evs[0].Data != want {
		t.Errorf("run event %q, header %q; want %s", evs[0].Data, rid, want)
	}
	if !strings.Contains(evs[1].Data, `"queued"`) || !strings.Contains(evs[2].Data, `"provisioning_timeout"`) {
		t.Errorf("events %+v", evs)
	}
	if evs[0].ID != "1" || evs[1].ID != "2" || evs[2].ID != "3" {
		t.Errorf("ids %q %q %q, want 1 2 3", evs[0].ID, evs[1].ID, evs[2].ID)
	}
	if msg, cmd := e.nextRequested(t); cmd.ConversationID != "c1" || cmd.Tenant != "tenant-a" || msg.Metadata.Get(events.MetadataType) != events.TypeWorkspaceRequested {
		t.Errorf("published %+v %v", cmd, msg.Metadata)
	}
	conv, err := e.store.Conversation(context.Background(), "c1")
	if err != nil || conv.State != store.StateQueued {
		t.Fatalf("conversation %+v, %v; want queued", conv, err)
	}
	// The conversation is keyA's now.
	if resp := e.do(t, http.MethodGet, "/v1/conversations/c1", secret(keyB), nil); resp.StatusCode != 404 {
		t.Errorf("other key sees it: %d", resp.StatusCode)
	}
	resp = e.do(t, http.MethodGet, "/v1/conversations/c1", secret(keyA), nil)
	var view map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&view); err != nil || view["state"] != "queued" {
		t.Errorf("view %v, %v", view, err)
	}
}

func TestAbortEndsWaitingStreams(t *testing.T) {
	e := newEnv(t, time.Minute)
	resp := e.do(t, http.MethodPost, "/v1/conversations/c2/execute", secret(keyA), strings.NewReader(`{"prompt":"hi"}`))
	rd := sse.NewReader(resp.Body)
	for _, want := range []string{"run", "status"} {
		if ev, err := rd.Next(); err != nil || ev.Event != want {
			t.Fatalf("event %+v, %v; want %s", ev, err, want)
		}
	}
	e.srv.Abort()
	last, err := rd.Next()
	if err != nil || last.Event != "error" || !strings.Contains(last.Data, "shutting_down") {
		t.Fatalf("last event %+v, %v", last, err)
	}
	if _, err := rd.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("stream did not end: %v", err)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t, time.Second)
	if resp := e.do(t, http.MethodGet, "/health/live", "", nil); resp.StatusCode != 200 {
		t.Fatalf("live %d", resp.StatusCode)
	}
	if resp := e.do(t, http.MethodGet, "/health/ready", "", nil); resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("ready %d %s", resp.StatusCode, b)
	}
	e.srv.Drain()
	resp := e.do(t, http.MethodGet, "/health/ready", "", nil)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !bytes.Contains(b, []byte("draining")) {
		t.Fatalf("ready while draining: %d %s", resp.StatusCode, b)
	}
	resp = e.do(t, http.MethodGet, "/metrics", "", nil)
	b, _ = io.ReadAll(resp.Body)
	for _, want := range []string{`workspaced_http_requests_total{code="200",method="GET",route="/health/live"}`, "workspaced_execute_streams_open"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestKeysNeverLogged(t *testing.T) {
	keys, err := handlers.ParseKeys(keyA, strings.NewReader("# comment\n\nt2:another-key-0123456789\n"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("keys", "keys", keys)
	if strings.Contains(buf.String(), "key-a") || strings.Contains(buf.String(), "another-key") {
		t.Fatalf("keys logged: %s", buf.String())
	}
	p, ok := keys.Lookup("another-key-0123456789")
	if !ok || p.Tenant != "t2" || !strings.HasPrefix(p.Owner, "k_") {
		t.Fatalf("lookup %+v %v", p, ok)
	}
	for _, bad := range []string{"short", "t:short", ":key-without-tenant-0123"} {
		if _, err := handlers.ParseKeys(bad, nil); err == nil || strings.Contains(err.Error(), "short") {
			t.Errorf("ParseKeys(%q) = %v; want an error that does not echo the key", bad, err)
		}
	}
	// A tenant becomes an ECS tag value and an S3 key segment: one that
	// either would refuse is refused here, at startup.
	for _, tc := range []struct {
		tenant string
		ok     bool
	}{
		{strings.Repeat("t", 128), true},
		{"acme.eu@x+y=z_1-2", true},
		{strings.Repeat("t", 129), false},
		{"acme corp", false},
		{"a/b", false},
		{"-acme", false},
		{"café", false},
	} {
		_, err := handlers.ParseKeys(tc.tenant+":secret-key-0123456789", nil)
		if (err == nil) != tc.ok || (err != nil && strings.Contains(err.Error(), "secret-key")) {
			t.Errorf("ParseKeys with tenant %q = %v, want ok=%v and the key never echoed", tc.tenant, err, tc.ok)
		}
	}
}

// An execute's mcp_config headers become the conversation's rules in
// Redis (not in its published record); invalid configs are refused.
func TestExecuteStoresMCPRules(t *testing.T) {
	e := newEnv(t, 50*time.Millisecond)
	body := `{"prompt":"hi","mcp_config":{"mcpServers":{"docs":{"type":"http","url":"https://mcp.example.com/mcp","headers":{"Authorization":"Bearer s3cret"}}}}}`
	resp := e.do(t, http.MethodPost, "/v1/conversations/mcp-1/execute", secret(keyA), strings.NewReader(body))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	readStream(t, resp.Body)
	raw, digest, err := e.store.MCPRules(context.Background(), "mcp-1")
	if err != nil || digest == "" || !strings.Contains(string(raw), "Bearer s3cret") || !strings.Contains(string(raw), `"path_prefix":"/mcp"`) {
		t.Fatalf("stored rules %q digest %q err %v", raw, digest, err)
	}
	c, err := e.store.Conversation(context.Background(), "mcp-1")
	if err != nil || strings.Contains(fmt.Sprintf("%+v", c), "s3cret") {
		t.Fatalf("conversation record %+v %v", c, err)
	}
	bad := `{"prompt":"hi","mcp_config":{"mcpServers":{"docs":{"url":"http://mcp.example.com/","headers":{"A":"s3cret"}}}}}`
	resp = e.do(t, http.MethodPost, "/v1/conversations/mcp-2/execute", secret(keyA), strings.NewReader(bad))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad config: status %d", resp.StatusCode)
	}
	if code := errorCode(t, resp); code != "bad_request" {
		t.Fatalf("code %q", code)
	}
}

// TestRequestIDIsTheCorrelationID: the request ID (the client's
// X-Request-Id when usable, else a new one) is answered in the response,
// and is the published command's correlation ID and request_id.
func TestRequestIDIsTheCorrelationID(t *testing.T) {
	e := newEnv(t, time.Minute)
	tests := []struct {
		name, header string
		kept         bool
	}{
		{"client's", "req-42.a_b:c", true},
		{"none", "", false},
		{"too long", strings.Repeat("x", 129), false},
		{"with a space", "req 42", false},
		{"not ASCII", "req-é", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, e.http.URL+fmt.Sprintf("/v1/conversations/rid-%d/execute", i),
				strings.NewReader(`{"kind":"command","argv":["true"]}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+secret(keyA))
			if tt.header != "" {
				req.Header.Set(echo.HeaderXRequestID, tt.header)
			}
			resp, err := e.http.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			id := resp.Header.Get(echo.HeaderXRequestID)
			if id == "" || (id == tt.header) != tt.kept {
				t.Fatalf("X-Request-Id %q for %q, kept = %v", id, tt.header, tt.kept)
			}
			msg, cmd := e.nextRequested(t)
			if c := msg.Metadata.Get(events.MetadataCorrelationID); c != id || cmd.RequestID != id {
				t.Errorf("correlation_id %q, request_id %q, want %q", c, cmd.RequestID, id)
			}
		})
	}
}

// stopServer ends the server's run drivers (runs outlive their requests).
func stopServer(t testing.TB, srv *handlers.Server) {
	srv.Abort()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Wait(ctx); err != nil {
		t.Errorf("run drivers did not end: %v", err)
	}
}
