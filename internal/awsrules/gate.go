package awsrules

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/workspaced/workspaced/internal/iampolicy"
)

// Gate is IAM in front of the AWS emulator for the services it emulates
// that we call (SQS, S3): it authorizes each request against the identity
// of its access key, answers a denied one as the service does
// (AccessDenied), and forwards the rest unchanged. The emulator itself
// enforces no IAM. The signature is not verified here (the emulator
// accepts any); the access key in the credential scope names the caller.
type Gate struct {
	// URL is the endpoint to give the clients instead of the emulator's.
	URL string

	region, account string
	identities      map[string]iampolicy.Identity
	srv             *httptest.Server

	mu     sync.Mutex
	denied []string
}

// StartGate starts a Gate forwarding to emulatorURL for the test.
// identities maps access key IDs to callers; a key it does not list is
// denied everything.
func StartGate(t testing.TB, emulatorURL, region, account string, identities map[string]iampolicy.Identity) *Gate {
	t.Helper()
	target, err := url.Parse(emulatorURL)
	if err != nil {
		t.Fatalf("emulator URL: %v", err)
	}
	g := &Gate{region: region, account: account, identities: identities}
	proxy := httputil.NewSingleHostReverseProxy(target)
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if g.deny(w, r, body) {
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	g.URL = g.srv.URL
	return g
}

// Denied lists the requests the gate denied, as "action resource".
func (g *Gate) Denied() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.denied...)
}

// deny authorizes r and writes the service's AccessDenied answer when it
// is not allowed.
func (g *Gate) deny(w http.ResponseWriter, r *http.Request, body []byte) bool {
	key, service := credentialScope(r.Header.Get("Authorization"))
	id, ok := g.identities[key]
	if !ok {
		id = iampolicy.Identity{ARN: "arn:aws:iam::" + g.account + ":user/" + key}
	}
	var reqs []iampolicy.Request
	switch service {
	case "sqs":
		reqs = g.sqsRequests(r, body)
	case "s3":
		reqs = s3Requests(r)
	default:
		reqs = []iampolicy.Request{{Action: service + ":Unknown", Resource: "*"}}
	}
	for _, req := range reqs {
		req.Principal = id.ARN
		res := iampolicy.Evaluate(req, id.Policies, nil)
		if res.Decision == iampolicy.Allowed {
			continue
		}
		g.mu.Lock()
		g.denied = append(g.denied, req.Action+" "+req.Resource)
		g.mu.Unlock()
		msg := iampolicy.DeniedMessage(req, res)
		if service == "s3" {
			writeS3Denied(w, msg)
		} else {
			writeSQSDenied(w, r, msg)
		}
		return true
	}
	return false
}

// credentialScope returns the access key ID and service of a SigV4
// Authorization header.
func credentialScope(auth string) (key, service string) {
	_, fields, _ := strings.Cut(auth, "Credential=")
	cred, _, _ := strings.Cut(fields, ",")
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return "", ""
	}
	return parts[0], parts[3]
}

// sqsRequests maps an SQS call (JSON protocol: X-Amz-Target
// AmazonSQS.<Op>; Query protocol: Action=<Op>) to its IAM request: the
// action sqs:<Op> on the queue's ARN.
func (g *Gate) sqsRequests(r *http.Request, body []byte) []iampolicy.Request {
	var op, queueURL, queueName string
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		op = strings.TrimPrefix(target, "AmazonSQS.")
		var in struct{ QueueUrl, QueueName string }
		_ = json.Unmarshal(body, &in)
		queueURL, queueName = in.QueueUrl, in.QueueName
	} else {
		form, _ := url.ParseQuery(string(body))
		op, queueURL, queueName = form.Get("Action"), form.Get("QueueUrl"), form.Get("QueueName")
	}
	resource := "*"
	switch {
	case queueURL != "":
		if u, err := url.Parse(queueURL); err == nil {
			if parts := strings.Split(strings.Trim(u.Path, "/"), "/"); len(parts) == 2 {
				resource = fmt.Sprintf("arn:aws:sqs:%s:%s:%s", g.region, parts[0], parts[1])
			}
		}
	case queueName != "":
		resource = fmt.Sprintf("arn:aws:sqs:%s:%s:%s", g.region, g.account, queueName)
	}
	return []iampolicy.Request{{Action: "sqs:" + op, Resource: resource}}
}

// s3Requests maps an S3 REST call (path-style) to its IAM request, per
// the Service Authorization Reference: object reads and writes on the
// object's ARN (multipart uploads are s3:PutObject but the abort), listing
// on the bucket's ARN with s3:prefix.
func s3Requests(r *http.Request) []iampolicy.Request {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	object := "arn:aws:s3:::" + bucket + "/" + key
	bucketARN := "arn:aws:s3:::" + bucket
	if key == "" {
		switch {
		case r.Method == http.MethodGet && q.Has("uploads"):
			return []iampolicy.Request{{Action: "s3:ListBucketMultipartUploads", Resource: bucketARN}}
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
			ctx := map[string][]string{}
			if q.Has("prefix") {
				ctx["s3:prefix"] = []string{q.Get("prefix")}
			}
			return []iampolicy.Request{{Action: "s3:ListBucket", Resource: bucketARN, Context: ctx}}
		case r.Method == http.MethodPost && q.Has("delete"):
			return []iampolicy.Request{{Action: "s3:DeleteObject", Resource: bucketARN + "/*"}}
		case r.Method == http.MethodPut:
			return []iampolicy.Request{{Action: "s3:CreateBucket", Resource: bucketARN}}
		case r.Method == http.MethodDelete:
			return []iampolicy.Request{{Action: "s3:DeleteBucket", Resource: bucketARN}}
		}
		return []iampolicy.Request{{Action: "s3:Unknown", Resource: bucketARN}}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return []iampolicy.Request{{Action: "s3:GetObject", Resource: object}}
	case http.MethodPut, http.MethodPost:
		return []iampolicy.Request{{Action: "s3:PutObject", Resource: object}}
	case http.MethodDelete:
		if q.Has("uploadId") {
			return []iampolicy.Request{{Action: "s3:AbortMultipartUpload", Resource: object}}
		}
		return []iampolicy.Request{{Action: "s3:DeleteObject", Resource: object}}
	}
	return []iampolicy.Request{{Action: "s3:Unknown", Resource: object}}
}

// writeSQSDenied answers as SQS does in the protocol of the request.
func writeSQSDenied(w http.ResponseWriter, r *http.Request, msg string) {
	if r.Header.Get("X-Amz-Target") != "" {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amzn-Query-Error", "AccessDenied;Sender")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazon.coral.service#AccessDeniedException", "message": msg})
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusForbidden)
	_, _ = fmt.Fprintf(w, `<?xml version="1.0"?><ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>%s</Message><Detail/></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>`, xmlEscape(msg))
}

// writeS3Denied answers as S3 does: 403 with an XML error document.
func writeS3Denied(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusForbidden)
	_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>%s</Message><RequestId>0000000000000000</RequestId><HostId>awsrules-gate</HostId></Error>`, xmlEscape(msg))
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
