package events

// Topic names. On the gochannel bus they are in-process topics; on SQS each
// is a queue of the same name (created by Terraform or LocalStack, never by
// the application). Terraform reads the same names from deploy/names.json.
const (
	// TopicWorkspaceRequested carries WorkspaceRequested commands.
	TopicWorkspaceRequested = "workspace-requested"
	// TopicWorkspaceReleased carries WorkspaceReleased commands.
	TopicWorkspaceReleased = "workspace-released"
	// TopicTaskEvents carries TaskStateChange envelopes, raw (no watermill
	// metadata) when EventBridge delivers them.
	TopicTaskEvents = "workspace-task-events"
	// TopicPoison receives messages that could not be handled after retries
	// on the gochannel bus. SQS has no shared poison queue: each queue has
	// its own dead-letter queue, named queue + DeadLetterSuffix.
	TopicPoison = "workspace-poison"
)

// DeadLetterSuffix names a queue's dead-letter queue on SQS: the dead-letter
// queue of "staging-workspace-requested" is
// "staging-workspace-requested-dlq". Terraform reads the same suffix from
// deploy/names.json.
const DeadLetterSuffix = "-dlq"

// QueueTopics returns the topics that are SQS queues in AWS (each with a
// dead-letter queue), in a fixed order. The caller owns the slice.
func QueueTopics() []string {
	return []string{TopicWorkspaceRequested, TopicWorkspaceReleased, TopicTaskEvents}
}

// Message metadata keys set on every command.
const (
	MetadataType          = "type"
	MetadataCorrelationID = "correlation_id"
)
