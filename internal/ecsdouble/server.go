package ecsdouble

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const targetPrefix = "AmazonEC2ContainerServiceV20141113."

// apiError is an ECS error response.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func invalidParam(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidParameterException", fmt.Sprintf(format, args...)}
}

func clientErr(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "ClientException", fmt.Sprintf(format, args...)}
}

// ServeHTTP implements the awsJson1_1 protocol: POST / with X-Amz-Target.
func (d *Double) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out, err := d.serve(r)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", newUUID())
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = &apiError{http.StatusInternalServerError, "ServerException", err.Error()}
		}
		w.Header().Set("X-Amzn-Errortype", ae.code)
		w.WriteHeader(ae.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.ecs#" + ae.code, "message": ae.message})
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (d *Double) serve(r *http.Request) (any, error) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return nil, &apiError{http.StatusNotFound, "UnknownOperationException", r.Method + " " + r.URL.Path}
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		return nil, &apiError{http.StatusBadRequest, "SerializationException", "Content-Type " + ct}
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	if !ok {
		return nil, &apiError{http.StatusBadRequest, "UnknownOperationException", "X-Amz-Target " + r.Header.Get("X-Amz-Target")}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	key, err := d.checkSignature(r, body)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.calls[op]++
	d.requests[op] = append(d.requests[op], body)
	throttle := d.throttleN > 0 || !d.bucket.take(time.Now())
	if d.throttleN > 0 {
		d.throttleN--
	}
	if throttle {
		d.throttled[op]++
	}
	d.mu.Unlock()
	if throttle {
		return nil, &apiError{http.StatusBadRequest, "ThrottlingException", "Rate exceeded"}
	}
	if err := d.authorize(key, op, body); err != nil {
		return nil, err
	}
	switch op {
	case "RunTask":
		var in runTaskInput
		if err := decodeStrict(body, &in); err != nil {
			return nil, err
		}
		return d.runTask(in, body)
	case "StopTask":
		var in stopTaskInput
		if err := decodeStrict(body, &in); err != nil {
			return nil, err
		}
		return d.stopTask(in)
	case "DescribeTasks":
		var in describeTasksInput
		if err := decodeStrict(body, &in); err != nil {
			return nil, err
		}
		return d.describeTasks(in)
	case "ListTasks":
		var in listTasksInput
		if err := decodeStrict(body, &in); err != nil {
			return nil, err
		}
		return d.listTasks(in)
	case "TagResource":
		var in tagResourceInput
		if err := decodeStrict(body, &in); err != nil {
			return nil, err
		}
		return d.tagResource(in)
	}
	return nil, &apiError{http.StatusBadRequest, "UnknownOperationException", "the ECS test double does not implement " + op}
}

// sigTimeFormat is SigV4's X-Amz-Date format.
const sigTimeFormat = "20060102T150405Z"

// checkSignature verifies the request's SigV4 signature the way AWS does:
// the credential scope names this region and the ecs service, the access
// key is known, the date is within 15 minutes, and the signature recomputed
// over the request as received (method, path, the signed headers, the body's
// hash) with the key's secret equals the one sent. It returns the access
// key ID.
func (d *Double) checkSignature(r *http.Request, body []byte) (string, error) {
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ")
	if !ok {
		return "", &apiError{http.StatusForbidden, "MissingAuthenticationTokenException", "request is not SigV4-signed"}
	}
	fields := map[string]string{}
	for _, part := range strings.Split(auth, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[2] != d.Region || scope[3] != "ecs" || scope[4] != "aws4_request" {
		return "", &apiError{http.StatusForbidden, "InvalidSignatureException", "credential scope " + fields["Credential"] + " is not for " + d.Region + "/ecs"}
	}
	secret, ok := d.credentials[scope[0]]
	if !ok {
		return "", &apiError{http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."}
	}
	at, err := time.Parse(sigTimeFormat, r.Header.Get("X-Amz-Date"))
	if err != nil || at.Format("20060102") != scope[1] {
		return "", &apiError{http.StatusForbidden, "IncompleteSignatureException", "bad or missing X-Amz-Date"}
	}
	if skew := time.Since(at); skew > 15*time.Minute || skew < -15*time.Minute {
		return "", &apiError{http.StatusForbidden, "InvalidSignatureException", "Signature expired"}
	}
	req, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return "", err
	}
	req.Host = r.Host
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		switch h {
		case "host":
		case "content-length":
			req.ContentLength = int64(len(body))
		default:
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: scope[0], SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, req, hex.EncodeToString(sum[:]), "ecs", d.Region, at); err != nil {
		return "", err
	}
	want := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(req.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		want[k] = v
	}
	if want["SignedHeaders"] != fields["SignedHeaders"] || !hmac.Equal([]byte(want["Signature"]), []byte(fields["Signature"])) {
		return "", &apiError{http.StatusForbidden, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided."}
	}
	return scope[0], nil
}

func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &apiError{http.StatusBadRequest, "SerializationException", err.Error()}
	}
	return nil
}

// checkCluster resolves a cluster name or ARN ("" is the default cluster,
// which the double does not have).
func (d *Double) checkCluster(ref string) error {
	if ref == d.ClusterName || ref == d.ClusterArn {
		return nil
	}
	return &apiError{http.StatusBadRequest, "ClusterNotFoundException", "Cluster not found."}
}
