// Package agent is the workspace agent: the HTTP server that runs inside a
// workspace container (on a Unix socket under Docker, on TCP :9000 on ECS)
// and that the backend drives.
//
//	GET  /health   Health as JSON
//	POST /execute  api.ExecuteRequest in, text/event-stream out (see the Event*
//	               constants); one run at a time, a second gets 409
//	GET  /files    the work directory as a tar stream
//	PUT  /files    replace the work directory's contents from a tar stream
//
// A run is a process group: the Claude Code CLI (or an argv) started with a
// fixed environment that holds no credential (credentials are added by the
// credential proxy on 127.0.0.1:8080). Cancelling the request, the run's
// timeout or the agent's shutdown kills the whole group (SIGTERM, then
// SIGKILL after Options.KillGrace) and the agent waits until no member is
// left before it sends the final "done" event.
//
// Under Docker the agent also forwards 127.0.0.1:8080 to the host-side
// credential proxy's Unix socket (Options.ProxySocket).
//
// Wire types (api.ExecuteRequest, Health, Done, api.Error) are shared with
// agent/client, the backend's side.
package agent
