package ecsdouble

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
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
	if err := d.checkSignature(r, body); err != nil {
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

// checkSignature checks that the request is SigV4-signed for this region
// and the ecs service. (It does not recompute the signature.)
func (d *Double) checkSignature(r *http.Request, _ []byte) error {
	auth := r.Header.Get("Authorization")
	scope := "/" + d.Region + "/ecs/aws4_request"
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=") || !strings.Contains(auth, scope) {
		return &apiError{http.StatusForbidden, "InvalidSignatureException", "request not signed for " + scope}
	}
	if r.Header.Get("X-Amz-Date") == "" {
		return &apiError{http.StatusForbidden, "IncompleteSignatureException", "missing X-Amz-Date"}
	}
	return nil
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
