package fakebedrock_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/workspaced/workspaced/internal/fakebedrock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testCreds = aws.Credentials{AccessKeyID: "AKIDFAKEBEDROCK", SecretAccessKey: "fake-secret-key", SessionToken: "fake-session-token"}

// detachedBody gives the transport its own copy of the request body. The
// SDK closes its request stream as soon as the operation returns (for an
// event stream: at the response headers), while net/http's writeLoop may
// still make its final "no extra bytes" Read of a Content-Length body; that
// Read then fails and the transport tears down the connection under the
// streaming response. Real callers of the proxy are not Go SDK clients;
// tests must not flake on this SDK/transport race.
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

func client(fb *fakebedrock.Server, creds aws.Credentials) *bedrockruntime.Client {
	hc := fb.Client()
	hc.Transport = detachedBody{hc.Transport}
	return bedrockruntime.New(bedrockruntime.Options{
		Region:       "us-east-1",
		Credentials:  credentials.StaticCredentialsProvider{Value: creds},
		BaseEndpoint: aws.String(fb.URL),
		HTTPClient:   hc,
		Retryer:      aws.NopRetryer{},
	})
}

// The verifier is an independent SigV4 implementation; it must accept what
// the SDK's own signer produces, including model ids with ':' and ARNs with
// '/', and reject a wrong secret.
func TestVerifierAgreesWithSDK(t *testing.T) {
	fb := fakebedrock.New(t, testCreds, "us-east-1")
	defer fb.Client().CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, model := range []string{
		"anthropic.claude-3-5-sonnet-20241022-v2:0",
		"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
	} {
		out, err := client(fb, testCreds).InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
			ModelId: aws.String(model), ContentType: aws.String("application/json"),
			Body: []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`),
		})
		if err != nil {
			last, _ := fb.Last()
			t.Fatalf("InvokeModel(%s): %v (server: %s)", model, err, last.Error)
		}
		var msg struct{ Content []struct{ Text string } }
		if err := json.Unmarshal(out.Body, &msg); err != nil || len(msg.Content) != 1 || msg.Content[0].Text != fakebedrock.Text {
			t.Fatalf("body %s: %v", out.Body, err)
		}
		if last, _ := fb.Last(); last.ModelID != model {
			t.Fatalf("server saw model %q; want %q", last.ModelID, model)
		}
	}
	bad := testCreds
	bad.SecretAccessKey = "wrong"
	_, err := client(fb, bad).InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String("m"), Body: []byte("{}")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidSignatureException" {
		t.Fatalf("wrong secret: err = %v; want InvalidSignatureException", err)
	}
	if fb.Rejected() != 1 || fb.Accepted() != 2 {
		t.Fatalf("accepted %d rejected %d", fb.Accepted(), fb.Rejected())
	}
}

func TestUnsignedRejected(t *testing.T) {
	fb := fakebedrock.New(t, testCreds, "us-east-1")
	c := fb.Client()
	defer c.CloseIdleConnections()
	resp, err := c.Post(fb.URL+"/model/m/invoke", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned: %d", resp.StatusCode)
	}
}

func TestStreamDecodesWithSDK(t *testing.T) {
	gate := make(chan struct{})
	fb := fakebedrock.New(t, testCreds, "us-east-1", fakebedrock.Options{Gate: gate, FrameDelay: time.Millisecond})
	defer fb.Client().CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := client(fb, testCreds).InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: aws.String("anthropic.claude-3-haiku-20240307-v1:0"), Body: []byte(`{}`), ContentType: aws.String("application/json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	defer stream.Close()
	var got []string
	for ev := range stream.Events() {
		chunk, ok := ev.(*types.ResponseStreamMemberChunk)
		if !ok {
			t.Fatalf("event %T", ev)
		}
		var e struct{ Type string }
		if err := json.Unmarshal(chunk.Value.Bytes, &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Type)
		if len(got) == 1 {
			close(gate) // the first frame arrived while the server was still held
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(fakebedrock.StreamEvents("")) || got[0] != "message_start" || got[len(got)-1] != "message_stop" {
		t.Fatalf("events %v", got)
	}
}

// Listen puts the server on another address, reached by a certificate name
// mapped to it (as a container's /etc/hosts maps the bridge gateway).
func TestListenAddress(t *testing.T) {
	const name = "bedrock-runtime.us-east-1.amazonaws.com"
	fb := fakebedrock.New(t, testCreds, "us-east-1", fakebedrock.Options{Listen: "127.0.0.2:0"})
	if !strings.HasPrefix(fb.Addr, "127.0.0.2:") || fb.URL != "https://"+fb.Addr {
		t.Fatalf("addr %s url %s", fb.Addr, fb.URL)
	}
	_, port, _ := net.SplitHostPort(fb.Addr)
	hc := fb.Client()
	tr := hc.Transport.(*http.Transport)
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, fb.Addr)
	}
	defer tr.CloseIdleConnections()
	c := bedrockruntime.New(bedrockruntime.Options{
		Region: "us-east-1", Credentials: credentials.StaticCredentialsProvider{Value: testCreds},
		BaseEndpoint: aws.String("https://" + name + ":" + port), HTTPClient: &http.Client{Transport: detachedBody{tr}},
		Retryer: aws.NopRetryer{},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String("m"), Body: []byte("{}")}); err != nil {
		t.Fatalf("InvokeModel: %v", err)
	}
	if last, _ := fb.Last(); !last.Verified || last.Host != name+":"+port {
		t.Fatalf("last request %+v", last)
	}
}
