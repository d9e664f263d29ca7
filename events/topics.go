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
	// on the gochannel bus; on SQS the queue's redrive policy moves them to a
	// dead-letter queue instead.
	TopicPoison = "workspace-poison"
)

// Message metadata keys set on every command.
const (
	MetadataType          = "type"
	MetadataCorrelationID = "correlation_id"
)
