package proxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/workspaced/workspaced/internal/fakebedrock"
)

// The benchmarks measure the proxy against a direct connection to the same
// test upstream, side by side in one run: each iteration makes one direct
// and one proxied call, so both see the same machine state. They report
// the direct and proxied figures and their ratio (proxied / direct).

const benchBody = `{"anthropic_version":"bedrock-2023-05-31","max_tokens":256,"messages":[{"role":"user","content":"Summarise the design of a credential-injection proxy in three sentences."}]}`

type latencies []time.Duration

func (l latencies) pct(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := append(latencies(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p * float64(len(s)-1))
	return s[i]
}

func reportPair(b *testing.B, name string, direct, proxied latencies) {
	for _, q := range []struct {
		label string
		p     float64
	}{{"p50", 0.50}, {"p99", 0.99}} {
		d, p := direct.pct(q.p), proxied.pct(q.p)
		b.ReportMetric(float64(d.Microseconds()), name+"_direct_"+q.label+"_us")
		b.ReportMetric(float64(p.Microseconds()), name+"_proxy_"+q.label+"_us")
		if d > 0 {
			b.ReportMetric(float64(p)/float64(d), name+"_"+q.label+"_ratio")
		}
	}
}

// signedDirect builds a request signed the way a client holding
// credentials would send it straight to Bedrock.
func signedDirect(b *testing.B, fb *fakebedrock.Server, op string) *http.Request {
	req, err := http.NewRequest(http.MethodPost, fb.URL+"/model/anthropic.claude-3-5-sonnet-20241022-v2:0/"+op, bytes.NewReader([]byte(benchBody)))
	if err != nil {
		b.Fatal(err)
	}
	req.Host = "bedrock-runtime.us-east-1.amazonaws.com"
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(benchBody))
	if err := v4.NewSigner().SignHTTP(context.Background(), testCreds, req, hex.EncodeToString(sum[:]), "bedrock", testRegion, time.Now()); err != nil {
		b.Fatal(err)
	}
	return req
}

func (w *world) proxied(b *testing.B, op string) *http.Request { return w.proxiedT(b, op) }

func (w *world) proxiedT(b testing.TB, op string) *http.Request {
	req, err := http.NewRequest(http.MethodPost, "http://"+w.addr+"/model/anthropic.claude-3-5-sonnet-20241022-v2:0/"+op, bytes.NewReader([]byte(benchBody)))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// timeToFirstByte sends req and returns the time to the first body byte
// and the total time; it drains the body.
func timeToFirstByte(b *testing.B, c *http.Client, req *http.Request) (ttfb, total time.Duration) {
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		b.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	one := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, one); err != nil {
		b.Fatal(err)
	}
	ttfb = time.Since(start)
	_, _ = io.Copy(io.Discard, resp.Body)
	return ttfb, time.Since(start)
}

// BenchmarkBedrockInvoke: small InvokeModel calls (keep-alive on both
// legs), added latency p50/p99.
func BenchmarkBedrockInvoke(b *testing.B) {
	w := newWorld(b, nil)
	direct := w.bedrock.Client()
	viaProxy := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer direct.CloseIdleConnections()
	defer viaProxy.CloseIdleConnections()
	var d, p latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, td := timeToFirstByte(b, direct, signedDirect(b, w.bedrock, "invoke"))
		_, tp := timeToFirstByte(b, viaProxy, w.proxied(b, "invoke"))
		d, p = append(d, td), append(p, tp)
	}
	reportPair(b, "invoke", d, p)
}

// BenchmarkBedrockStreamTTFB: time to the first event-stream frame of
// invoke-with-response-stream.
func BenchmarkBedrockStreamTTFB(b *testing.B) {
	w := newWorld(b, nil, fakebedrock.Options{FrameDelay: time.Millisecond})
	direct := w.bedrock.Client()
	viaProxy := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer direct.CloseIdleConnections()
	defer viaProxy.CloseIdleConnections()
	var d, p latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		td, _ := timeToFirstByte(b, direct, signedDirect(b, w.bedrock, "invoke-with-response-stream"))
		tp, _ := timeToFirstByte(b, viaProxy, w.proxied(b, "invoke-with-response-stream"))
		d, p = append(d, td), append(p, tp)
	}
	reportPair(b, "stream_ttfb", d, p)
}

// BenchmarkConnectThroughput: bytes pushed through a CONNECT tunnel to a
// sink, against the same sink dialed directly.
func BenchmarkConnectThroughput(b *testing.B) {
	const size = 16 << 20
	w := newWorld(b, nil)
	sink := newSink(b)
	w.net.addName("sink.allowed.example", addrs("93.184.216.60"))
	w.net.route("93.184.216.60:443", sink)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	push := func(c net.Conn) time.Duration {
		start := time.Now()
		_, _ = fmt.Fprintf(c, "%d\n", size)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		ack := make([]byte, 1)
		if _, err := io.ReadFull(c, ack); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var dTotal, pTotal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dc, err := net.Dial("tcp", sink)
		if err != nil {
			b.Fatal(err)
		}
		dTotal += push(dc)
		dc.Close()
		pc := w.tunnel("sink.allowed.example:443")
		pTotal += push(pc)
		pc.Close()
	}
	mb := float64(size) * float64(b.N) / (1 << 20)
	dRate, pRate := mb/dTotal.Seconds(), mb/pTotal.Seconds()
	b.ReportMetric(dRate, "connect_direct_MiB/s")
	b.ReportMetric(pRate, "connect_proxy_MiB/s")
	b.ReportMetric(pRate/dRate, "connect_throughput_ratio")
}

// newSink accepts connections that announce a byte count on the first
// line, reads that many bytes and answers one byte.
func newSink(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				var n int
				r := &byteReader{c: c}
				if _, err := fmt.Fscanf(r, "%d\n", &n); err != nil {
					return
				}
				if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
					return
				}
				_, _ = c.Write([]byte{1})
			}(c)
		}
	}()
	return ln.Addr().String()
}

// byteReader reads one byte at a time so Fscanf consumes only the header.
type byteReader struct{ c net.Conn }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return r.c.Read(p[:1])
}
