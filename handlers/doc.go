// Package handlers is workspaced's HTTP API (Echo v4), docs/contracts.md §4.5:
//
//	POST   /v1/conversations/{id}/execute  SSE: status events while a workspace is provisioned,
//	                                       then the agent's events, heartbeats, one final event
//	GET    /v1/conversations/{id}          the conversation and its workspace
//	DELETE /v1/conversations/{id}          release the workspace (202; workspace.released)
//	GET    /v1/pool                        warm-pool inventory
//	GET    /health/live, /health/ready     liveness, readiness (Redis, bus, runtime)
//	GET    /metrics                        Prometheus
//
// The API never starts a container: it publishes workspace.requested and
// waits, through Redis pub/sub, for the state workers to mark the
// conversation ready. Every /v1 route needs a Bearer API key; a
// conversation belongs to the key that first used it and is invisible (404)
// to others. Bad input gets a 4xx with a JSON body; once an execute stream
// has started, failures arrive as a final SSE "error" event instead.
//
// # Execute stream
//
// Every event gets a fresh increasing id. Events, in order:
//
//	status   {"state":"queued"|"provisioning"|"ready","workspace_id":"..."}  (zero or more)
//	...      the agent's events verbatim: message, log, stdout, stderr, *_part
//	done     the agent's final event {"exit_code":0,"duration_ms":12}        (final)
//	error    {"error":{"code":"...","message":"..."}}                         (final, instead of done)
//
// plus ": ping" comment heartbeats. Closing the connection cancels the run.
package handlers
