package events_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/workspaced/workspaced/events"
)

// TestNamesJSONAgreesWithTopics keeps deploy/names.json (read by Terraform
// and the LocalStack init scripts) and the topic constants in step.
func TestNamesJSONAgreesWithTopics(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "names.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names struct {
		Queues           map[string]string `json:"queues"`
		DeadLetterSuffix string            `json:"dead_letter_suffix"`
	}
	if err := json.Unmarshal(b, &names); err != nil {
		t.Fatalf("parse names.json: %v", err)
	}
	want := map[string]string{
		"workspace_requested": events.TopicWorkspaceRequested,
		"workspace_released":  events.TopicWorkspaceReleased,
		"task_events":         events.TopicTaskEvents,
	}
	for key, topic := range want {
		if got, ok := names.Queues[key]; !ok || got != topic {
			t.Errorf("names.json queues.%s = %q, want %q", key, got, topic)
		}
	}
	for key := range names.Queues {
		if _, ok := want[key]; !ok {
			t.Errorf("names.json has queue %q that no topic constant names", key)
		}
	}
	if names.DeadLetterSuffix != events.DeadLetterSuffix {
		t.Errorf("names.json dead_letter_suffix = %q, want %q", names.DeadLetterSuffix, events.DeadLetterSuffix)
	}
	queues := make([]string, 0, len(names.Queues))
	for _, q := range names.Queues {
		queues = append(queues, q)
	}
	topics := events.QueueTopics()
	slices.Sort(queues)
	slices.Sort(topics)
	if !slices.Equal(queues, topics) {
		t.Errorf("QueueTopics() = %v, names.json queues = %v", topics, queues)
	}
	if slices.Contains(topics, events.TopicPoison) {
		t.Errorf("the poison topic is gochannel-only and must not be an SQS queue")
	}
}
