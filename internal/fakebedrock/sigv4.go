package fakebedrock

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// ErrSignature is wrapped by every verification failure.
var ErrSignature = errors.New("sigv4 verification failed")

const (
	algorithm  = "AWS4-HMAC-SHA256"
	timeFormat = "20060102T150405Z"
	maxSkew    = 5 * time.Minute
)

// Verify checks a request's AWS Signature Version 4 (header form) exactly
// as AWS does, independently of the SDK's signer: the canonical request is
// rebuilt from the raw request target as it came off the wire (rawTarget is
// r.RequestURI), the body hash is recomputed, and the signature is derived
// from creds. service and region are the expected credential scope.
func Verify(r *http.Request, rawTarget string, body []byte, creds aws.Credentials, service, region string, now time.Time) error {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, algorithm+" ") {
		return fmt.Errorf("%w: missing or non-SigV4 Authorization", ErrSignature)
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, algorithm+" "), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: malformed Authorization", ErrSignature)
		}
		fields[k] = v
	}
	cred, signedHeaders, sig := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return fmt.Errorf("%w: malformed credential scope", ErrSignature)
	}
	if scope[0] != creds.AccessKeyID {
		return fmt.Errorf("%w: unknown access key", ErrSignature)
	}
	if scope[2] != region || scope[3] != service {
		return fmt.Errorf("%w: scope %s/%s, want %s/%s", ErrSignature, scope[2], scope[3], region, service)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(timeFormat, amzDate)
	if err != nil {
		return fmt.Errorf("%w: bad X-Amz-Date", ErrSignature)
	}
	if d := now.Sub(t); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("%w: request time skewed by %s", ErrSignature, d)
	}
	if scope[1] != t.Format("20060102") {
		return fmt.Errorf("%w: scope date differs from X-Amz-Date", ErrSignature)
	}
	signed := strings.Split(signedHeaders, ";")
	if !sort.StringsAreSorted(signed) || !contains(signed, "host") || !contains(signed, "x-amz-date") {
		return fmt.Errorf("%w: SignedHeaders %q", ErrSignature, signedHeaders)
	}
	token := r.Header.Get("X-Amz-Security-Token")
	switch {
	case creds.SessionToken == "" && token != "":
		return fmt.Errorf("%w: unexpected security token", ErrSignature)
	case creds.SessionToken != "" && token != creds.SessionToken:
		return fmt.Errorf("%w: wrong or missing security token", ErrSignature)
	case token != "" && !contains(signed, "x-amz-security-token"):
		return fmt.Errorf("%w: security token not signed", ErrSignature)
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHash {
		return fmt.Errorf("%w: X-Amz-Content-Sha256 does not match the body", ErrSignature)
	}
	path, query, _ := strings.Cut(rawTarget, "?")
	canonical := strings.Join([]string{
		r.Method,
		uriEncode(path, false),
		canonicalQuery(query),
		canonicalHeaders(r, signed),
		signedHeaders,
		payloadHash,
	}, "\n")
	crSum := sha256.Sum256([]byte(canonical))
	credScope := strings.Join(scope[1:], "/")
	stringToSign := algorithm + "\n" + amzDate + "\n" + credScope + "\n" + hex.EncodeToString(crSum[:])
	key := hmacSHA256([]byte("AWS4"+creds.SecretAccessKey), scope[1])
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(key, stringToSign))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return fmt.Errorf("%w: signature mismatch (canonical request %q)", ErrSignature, canonical)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// uriEncode applies SigV4's UriEncode: every byte but the unreserved set is
// percent-encoded (so an already-encoded "%3A" on the wire becomes "%253A",
// the double encoding non-S3 services use).
func uriEncode(s string, encodeSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return "\x00invalid"
	}
	var pairs []string
	for k, vs := range vals {
		for _, v := range vs {
			pairs = append(pairs, uriEncode(k, true)+"="+uriEncode(v, true))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

func canonicalHeaders(r *http.Request, signed []string) string {
	var b strings.Builder
	for _, name := range signed {
		var vals []string
		switch name {
		case "host":
			vals = []string{r.Host}
		case "content-length":
			vals = []string{fmt.Sprint(r.ContentLength)}
		default:
			vals = r.Header.Values(name)
		}
		for i, v := range vals {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		b.WriteString(name + ":" + strings.Join(vals, ",") + "\n")
	}
	return b.String()
}
