package localstack_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
)

// queryShim sits between Debian's AWS CLI and the emulator. The CLI (2.9)
// speaks SQS's Query protocol (form in, XML out), as real SQS still accepts;
// kumo speaks only the JSON protocol current SDKs use. The shim translates
// the SQS actions the init script uses and passes every other request
// (EventBridge, S3) through untouched.
type queryShim struct {
	upstream *url.URL
	proxy    *httputil.ReverseProxy
	client   *http.Client
}

func newQueryShim(upstream *url.URL) *queryShim {
	return &queryShim{upstream: upstream, proxy: httputil.NewSingleHostReverseProxy(upstream), client: &http.Client{}}
}

// sqsQueryActions are the translated actions.
var sqsQueryActions = map[string]bool{
	"CreateQueue": true, "GetQueueUrl": true, "GetQueueAttributes": true,
	"SetQueueAttributes": true, "ListQueues": true, "DeleteQueue": true,
}

func (s *queryShim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		s.proxy.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	form, err := url.ParseQuery(string(body))
	action := form.Get("Action")
	if err != nil || !sqsQueryActions[action] {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		s.proxy.ServeHTTP(w, r)
		return
	}
	in := queryToJSON(form)
	if _, ok := in["QueueUrl"]; !ok && r.URL.Path != "/" && r.URL.Path != "" {
		in["QueueUrl"] = s.upstream.String() + r.URL.Path
	}
	payload, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, s.upstream.String()+"/", bytes.NewReader(payload))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "AmazonSQS."+action)
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	req.Header.Set("X-Amz-Date", r.Header.Get("X-Amz-Date"))
	resp, err := s.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	w.Header().Set("Content-Type", "text/xml")
	if resp.StatusCode >= 300 {
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(queryError(out))
		return
	}
	var res map[string]any
	if len(bytes.TrimSpace(out)) > 0 {
		if err := json.Unmarshal(out, &res); err != nil {
			http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
			return
		}
	}
	_, _ = w.Write(queryResponse(action, res))
}

// queryToJSON maps Query parameters (Attribute.1.Name, AttributeName.1,
// Tag.1.Key, ...) to the JSON protocol's input.
func queryToJSON(form url.Values) map[string]any {
	in := map[string]any{}
	attrs := map[string]string{}
	tags := map[string]string{}
	var names []string
	for k := range form {
		switch {
		case k == "QueueName", k == "QueueUrl", k == "QueueNamePrefix":
			in[k] = form.Get(k)
		case strings.HasPrefix(k, "Attribute.") && strings.HasSuffix(k, ".Name"):
			n := strings.TrimSuffix(strings.TrimPrefix(k, "Attribute."), ".Name")
			attrs[form.Get(k)] = form.Get("Attribute." + n + ".Value")
		case strings.HasPrefix(k, "Tag.") && strings.HasSuffix(k, ".Key"):
			n := strings.TrimSuffix(strings.TrimPrefix(k, "Tag."), ".Key")
			tags[form.Get(k)] = form.Get("Tag." + n + ".Value")
		case strings.HasPrefix(k, "AttributeName."):
			names = append(names, form.Get(k))
		}
	}
	if len(attrs) > 0 {
		in["Attributes"] = attrs
	}
	if len(tags) > 0 {
		in["tags"] = tags
	}
	if len(names) > 0 {
		sort.Strings(names)
		in["AttributeNames"] = names
	}
	return in
}

type xmlAttribute struct {
	Name  string `xml:"Name"`
	Value string `xml:"Value"`
}

// queryResponse renders the Query protocol's XML for a JSON result.
func queryResponse(action string, res map[string]any) []byte {
	var inner bytes.Buffer
	switch action {
	case "CreateQueue", "GetQueueUrl":
		inner.WriteString("<QueueUrl>" + xmlEscape(fmt.Sprint(res["QueueUrl"])) + "</QueueUrl>")
	case "GetQueueAttributes":
		attrs, _ := res["Attributes"].(map[string]any)
		keys := make([]string, 0, len(attrs))
		for k := range attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b, _ := xml.Marshal(struct {
				XMLName xml.Name `xml:"Attribute"`
				xmlAttribute
			}{xmlAttribute: xmlAttribute{Name: k, Value: fmt.Sprint(attrs[k])}})
			inner.Write(b)
		}
	case "ListQueues":
		urls, _ := res["QueueUrls"].([]any)
		for _, u := range urls {
			inner.WriteString("<QueueUrl>" + xmlEscape(fmt.Sprint(u)) + "</QueueUrl>")
		}
	}
	ns := `xmlns="http://queue.amazonaws.com/doc/2012-11-05/"`
	meta := "<ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>"
	if inner.Len() == 0 && (action == "SetQueueAttributes" || action == "DeleteQueue") {
		return []byte(fmt.Sprintf("<%sResponse %s>%s</%sResponse>", action, ns, meta, action))
	}
	return []byte(fmt.Sprintf("<%sResponse %s><%sResult>%s</%sResult>%s</%sResponse>", action, ns, action, inner.String(), action, meta, action))
}

// queryError maps a JSON protocol error to the Query protocol's.
func queryError(body []byte) []byte {
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &e)
	code := e.Type
	if i := strings.LastIndex(code, "#"); i >= 0 {
		code = code[i+1:]
	}
	if code == "QueueDoesNotExist" {
		code = "AWS.SimpleQueueService.NonExistentQueue"
	}
	if code == "" {
		code = "InternalError"
	}
	return []byte("<ErrorResponse><Error><Type>Sender</Type><Code>" + xmlEscape(code) + "</Code><Message>" + xmlEscape(e.Message) +
		"</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>")
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
