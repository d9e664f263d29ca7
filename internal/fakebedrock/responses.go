package fakebedrock

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// Text is what the fake model answers.
const Text = "Hello from fakebedrock."

func pathUnescape(s string) (string, error) { return url.PathUnescape(s) }

// messageResponse is a small Anthropic Messages API response, the body
// InvokeModel returns for anthropic.* models.
func messageResponse(model string) map[string]any {
	return map[string]any{
		"id":            "msg_fakebedrock_01",
		"type":          "message",
		"role":          "assistant",
		"model":         model,
		"content":       []map[string]any{{"type": "text", "text": Text}},
		"stop_reason":   "end_turn",
		"stop_sequence": nil,
		"usage":         map[string]int{"input_tokens": 12, "output_tokens": 5},
	}
}

func converseResponse() map[string]any {
	return map[string]any{
		"output": map[string]any{"message": map[string]any{
			"role": "assistant", "content": []map[string]any{{"text": Text}},
		}},
		"stopReason": "end_turn",
		"usage":      map[string]int{"inputTokens": 12, "outputTokens": 5, "totalTokens": 17},
		"metrics":    map[string]int{"latencyMs": 1},
	}
}

// StreamEvents are the Anthropic streaming events the fake sends, one per
// eventstream frame, in order.
func StreamEvents(model string) []map[string]any {
	return []map[string]any{
		{"type": "message_start", "message": map[string]any{
			"id": "msg_fakebedrock_01", "type": "message", "role": "assistant", "model": model,
			"content": []any{}, "stop_reason": nil, "usage": map[string]int{"input_tokens": 12, "output_tokens": 1}}},
		{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}},
		{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": "Hello from "}},
		{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": "fakebedrock."}},
		{"type": "content_block_stop", "index": 0},
		{"type": "message_delta", "delta": map[string]any{"stop_reason": "end_turn"}, "usage": map[string]int{"output_tokens": 5}},
		{"type": "message_stop"},
	}
}

// stream answers InvokeModelWithResponseStream: each event is a "chunk"
// frame whose payload is {"bytes": base64(event JSON)}, flushed on its own.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, model string) {
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.Header().Set("X-Amzn-Bedrock-Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := eventstream.NewEncoder()
	for i, ev := range StreamEvents(model) {
		inner, _ := json.Marshal(ev)
		payload, _ := json.Marshal(map[string][]byte{"bytes": inner}) // []byte marshals as base64
		var h eventstream.Headers
		h.Set(":event-type", eventstream.StringValue("chunk"))
		h.Set(":content-type", eventstream.StringValue("application/json"))
		h.Set(":message-type", eventstream.StringValue("event"))
		if err := enc.Encode(w, eventstream.Message{Headers: h, Payload: payload}); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		if i == 0 && s.opts.Gate != nil {
			select {
			case <-s.opts.Gate:
			case <-r.Context().Done():
				return
			}
			continue
		}
		t := time.NewTimer(s.opts.FrameDelay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
}
