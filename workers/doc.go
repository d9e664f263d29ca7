// Package workers holds the consumers behind the API: the workspace.requested
// and workspace.released command consumers, the task-state subscriber that
// turns runtime events into Redis state, and the background loops (warm
// pool, idle GC, orphan reaper, reconciler).
//
// Workers never know which runtime or bus they run on: they see the
// workspace.Runtime contract and Watermill messages.
package workers
