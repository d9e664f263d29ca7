package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/workspaced/workspaced/internal/fakebedrock"
	"github.com/workspaced/workspaced/proxy"
)

// sdkClient is the real Bedrock runtime client as the workspace uses it:
// anonymous credentials (it holds none) and the proxy as its endpoint.
func (w *world) sdkClient() *bedrockruntime.Client {
	return bedrockruntime.New(bedrockruntime.Options{
		Region:       testRegion,
		Credentials:  aws.AnonymousCredentials{},
		BaseEndpoint: aws.String("http://" + w.addr),
		HTTPClient:   &http.Client{Transport: detachedBody{&http.Transport{DisableCompression: true}}},
		Retryer:      aws.NopRetryer{},
		// Anonymous credentials leave the client's bearer scheme selected
		// (and crashing for lack of a token); prefer "no auth", which is
		// what the workspace means: it sends no Authorization at all.
		AuthSchemePreference: []string{"noAuth"},
	})
}

func TestBedrockSDKThroughProxy(t *testing.T) {
	w := newWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, model := range []string{
		"anthropic.claude-3-5-sonnet-20241022-v2:0",                                                             // ':' in the id
		"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0", // '/' sent as %2F
		"us.anthropic.claude-sonnet-4-20250514-v1:0",
	} {
		out, err := w.sdkClient().InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
			ModelId: aws.String(model), ContentType: aws.String("application/json"),
			Body: []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`),
		})
		last, _ := w.bedrock.Last()
		if err != nil {
			t.Fatalf("InvokeModel(%s) through proxy: %v (upstream: %s)", model, err, last.Error)
		}
		if !last.Verified || last.ModelID != model {
			t.Fatalf("upstream saw model %q verified=%v", last.ModelID, last.Verified)
		}
		if strings.Contains(model, "/") && !strings.Contains(last.RawTarget, "%2F") {
			t.Fatalf("ARN path not kept as encoded on the wire: %s", last.RawTarget)
		}
		var msg struct{ Content []struct{ Text string } }
		if err := json.Unmarshal(out.Body, &msg); err != nil || msg.Content[0].Text != fakebedrock.Text {
			t.Fatalf("response %s: %v", out.Body, err)
		}
	}
	if !strings.Contains(w.logs.String(), `"route":"bedrock"`) {
		t.Error("no audit line for the bedrock route")
	}
}

// F8: the first event reaches the client while the upstream is still held
// after its first frame: the proxy relays frames as they arrive.
func TestBedrockStreamFirstFrameBeforeUpstreamFinishes(t *testing.T) {
	gate := make(chan struct{})
	w := newWorld(t, nil, fakebedrock.Options{Gate: gate, FrameDelay: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := w.sdkClient().InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String("anthropic.claude-3-haiku-20240307-v1:0"), ContentType: aws.String("application/json"), Body: []byte(`{}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	defer stream.Close()
	var types_ []string
	for ev := range stream.Events() {
		chunk, ok := ev.(*types.ResponseStreamMemberChunk)
		if !ok {
			t.Fatalf("event %T", ev)
		}
		var e struct{ Type string }
		_ = json.Unmarshal(chunk.Value.Bytes, &e)
		types_ = append(types_, e.Type)
		if len(types_) == 1 {
			// Only now may the upstream continue: had the proxy buffered,
			// this event could not have arrived and the test would hang
			// until its deadline.
			close(gate)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(types_) != len(fakebedrock.StreamEvents("")) {
		t.Fatalf("events %v", types_)
	}
}

// F1, D2: stale client signing headers are removed, a fresh signature is
// made, and hostile Connection headers cannot strip the signature.
func TestBedrockResignsAndStripsClientAuth(t *testing.T) {
	w := newWorld(t, nil)
	body := `{"anthropic_version":"bedrock-2023-05-31","max_tokens":1,"messages":[]}`
	req := fmt.Sprintf("POST /model/anthropic.claude-v2:1/invoke HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"+
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIDSTALE/20200101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=00\r\n"+
		"X-Amz-Date: 20200101T000000Z\r\nX-Amz-Security-Token: stale-client-token\r\n"+
		"X-Amz-Content-Sha256: 0000000000000000000000000000000000000000000000000000000000000000\r\n"+
		"Connection: Authorization, X-Amz-Date, X-Amz-Security-Token\r\n"+
		"X-Client-Secret: do-not-forward\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	resp, rb := w.raw(req)
	if resp.StatusCode != http.StatusOK {
		last, _ := w.bedrock.Last()
		t.Fatalf("status %d %s (upstream: %s)", resp.StatusCode, rb, last.Error)
	}
	last, _ := w.bedrock.Last()
	if !last.Verified {
		t.Fatal("upstream did not verify the signature")
	}
	h := last.Header
	if h.Get("X-Amz-Security-Token") != testCreds.SessionToken {
		t.Fatalf("upstream token %q; want the proxy's", h.Get("X-Amz-Security-Token"))
	}
	if strings.Contains(h.Get("Authorization"), "AKIDSTALE") || h.Get("X-Amz-Date") == "20200101T000000Z" {
		t.Fatal("client signing headers reached upstream")
	}
	if h.Get("X-Client-Secret") != "" || h.Get("Connection") != "" {
		t.Fatal("non-allowlisted headers reached upstream")
	}
}

// F3: over the cap → 413 before any upstream I/O, with or without a
// Content-Length.
func TestBedrockBodyCap(t *testing.T) {
	w := newWorld(t, func(o *proxy.Options) { o.Limits.MaxBedrockBody = 1 << 20 })
	big := bytes.Repeat([]byte("a"), 1<<20+1)
	resp, _ := w.raw(fmt.Sprintf("POST /model/m/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s", len(big), big))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("content-length: status %d", resp.StatusCode)
	}
	chunked := fmt.Sprintf("POST /model/m/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big)
	resp, _ = w.raw(chunked)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: status %d", resp.StatusCode)
	}
	if w.bedrock.Conns() != 0 {
		t.Fatal("upstream saw a connection")
	}
}

func TestBedrockDefaultBodyCapIs10MiB(t *testing.T) {
	w := newWorld(t, nil)
	resp, _ := w.raw("POST /model/m/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10485761\r\n\r\n")
	if resp.StatusCode != http.StatusRequestEntityTooLarge || w.bedrock.Conns() != 0 {
		t.Fatalf("status %d, upstream conns %d", resp.StatusCode, w.bedrock.Conns())
	}
}

type failingProvider struct{ creds aws.Credentials }

func (f failingProvider) Retrieve(context.Context) (aws.Credentials, error) {
	if f.creds.HasKeys() {
		return f.creds, nil
	}
	return aws.Credentials{}, errors.New("no credentials in the chain")
}

// F7: missing, failing or expired credentials → 503, never unsigned.
func TestBedrockFailsClosedWithoutCredentials(t *testing.T) {
	expired := testCreds
	expired.CanExpire, expired.Expires = true, time.Now().Add(-time.Minute)
	for name, cp := range map[string]aws.CredentialsProvider{
		"none":    nil,
		"failing": failingProvider{},
		"expired": failingProvider{creds: expired},
		"empty":   failingProvider{creds: aws.Credentials{AccessKeyID: "", SecretAccessKey: "x"}},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, func(o *proxy.Options) { o.Bedrock.Credentials = cp })
			resp, body := w.raw(originReq("POST", "/model/m/invoke", "127.0.0.1"))
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			if w.bedrock.Conns() != 0 || w.bedrock.Requests() != 0 {
				t.Fatal("request reached upstream")
			}
		})
	}
}

func TestBedrockModelAllowlist(t *testing.T) {
	w := newWorld(t, func(o *proxy.Options) { o.Bedrock.Models = []string{"anthropic.*"} })
	resp, _ := w.raw(originReq("POST", "/model/meta.llama3-70b-instruct-v1:0/invoke", "127.0.0.1"))
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Proxy-Error") != "bedrock_model_denied" {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
	resp, _ = w.raw(originReq("POST", "/model/anthropic.claude-v2/invoke", "127.0.0.1"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("allowed model: %d", resp.StatusCode)
	}
}

// The wiring other packages' end-to-end tests use: the proxy pointed at a
// fakebedrock URL with the fake's own transport (no egress policy on this
// operator-configured upstream).
func TestBedrockUpstreamOverrideForEndToEndTests(t *testing.T) {
	var fbURL string
	var fbTransport http.RoundTripper
	w := newWorld(t, func(o *proxy.Options) {
		o.Bedrock.Upstream = nil // set below, once the fake exists
	})
	fbURL, fbTransport = w.bedrock.URL, w.bedrock.Client().Transport
	u, _ := url.Parse(fbURL)
	p, err := proxy.New(proxy.Options{Bedrock: proxy.BedrockOptions{
		Region: testRegion, Upstream: u, Transport: fbTransport,
		Credentials: credentials.StaticCredentialsProvider{Value: testCreds},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Serve(ln) }()
	defer func() { _ = p.Shutdown(context.Background()); <-done }()
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	resp, err := c.Post("http://"+ln.Addr().String()+"/model/anthropic.claude-v2:1/invoke", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if last, _ := w.bedrock.Last(); resp.StatusCode != 200 || !last.Verified {
		t.Fatalf("status %d %s (upstream %s)", resp.StatusCode, body, last.Error)
	}
}

// Each Bedrock call may buffer up to the body cap: their number per
// workspace is bounded.
func TestBedrockInFlightLimit(t *testing.T) {
	gate := make(chan struct{})
	w := newWorld(t, func(o *proxy.Options) { o.Limits.MaxBedrockInFlight = 1 }, fakebedrock.Options{Gate: gate})
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer c.CloseIdleConnections()
	resp, err := c.Do(w.proxiedT(t, "invoke-with-response-stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	one := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, one); err != nil { // the first call is in flight, held by the gate
		t.Fatal(err)
	}
	second, _ := w.raw(originReq("POST", "/model/m/invoke", "127.0.0.1"))
	if second.StatusCode != http.StatusServiceUnavailable || second.Header.Get("X-Proxy-Error") != "too_many_bedrock_calls" {
		t.Fatalf("second call: %d %q", second.StatusCode, second.Header.Get("X-Proxy-Error"))
	}
	close(gate)
	_, _ = io.Copy(io.Discard, resp.Body)
}

// A Bedrock body trickled slower than the body read timeout is refused
// (408) without reaching upstream.
func TestBedrockBodyReadTimeout(t *testing.T) {
	w := newWorld(t, func(o *proxy.Options) { o.Limits.BodyReadTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", w.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "POST /model/m/invoke HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"partial\":")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("no answer before the test deadline: body read not bounded")
		}
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestTimeout || w.bedrock.Conns() != 0 {
		t.Fatalf("status %d, upstream conns %d", resp.StatusCode, w.bedrock.Conns())
	}
}

// detachedBody gives the transport its own copy of the request body: the
// SDK closes its request stream when the operation returns (for an event
// stream, at the response headers) while net/http may still make its final
// "no extra bytes" Read of a Content-Length body, which then fails and
// tears the connection down under the streaming response. Not a proxy
// behaviour; the workspace's real client is Claude Code, not the Go SDK.
type detachedBody struct{ rt http.RoundTripper }

func (d detachedBody) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	return d.rt.RoundTrip(r)
}
