// Package events is workspaced's message vocabulary: the commands the API
// publishes (workspace.requested, workspace.released), the task-state event
// envelope runtimes emit (EventBridge "ECS Task State Change", also produced
// by the Docker runtime), the topic names, and a strict JSON codec.
//
// It imports nothing of ours and no transport: building a bus and routing
// messages live in events/bus. Decoding errors are typed (see DecodeError) so
// consumers can send bad messages to the poison queue instead of retrying.
package events
