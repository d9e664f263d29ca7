package store

// The views of a Store. Each is a handle on the shared client (copy it
// freely) owning one part of the state and the operations on it; each
// consumer declares an interface over what it uses of them.

// Conversations are conversation records, their bindings to workspaces,
// their change notifications (Watch) and their MCP rules: conv:{cid},
// conv:{cid}:events, mcp:{cid}, and the workspace hashes a binding
// changes.
type Conversations struct{ c *core }

// Events are workspace records as task-state events and the reconciler's
// repairs change them: ws:{wid}, workspaces, and the conversations and pool
// sets a workspace's end changes.
type Events struct{ c *core }

// Pool is the warm pool's inventory: the pool:* sets, the claims that
// hand a pool workspace to a conversation, and the pool's notifications.
type Pool struct{ c *core }

// Leases are expiring exclusive holds judged by the store's clock: the
// leaders' leases (lease:{name}) and the provisioning locks
// (lock:provision:{cid}).
type Leases struct{ c *core }

// Activity is what the idle GC judges: last use of a workspace (lastuse)
// and the leases of its open streams (streams:{wid}).
type Activity struct{ c *core }

// Runs are the runs of conversations: their records (run:{rid}), their
// bounded event logs (run:{rid}:log, Redis Streams), the list of a
// conversation's recent runs (conv:{cid}:runs) and the runs not yet ended
// (runs:active). Which replica relays a run is a lease (lease:{name} with
// name "run:<rid>", Leases).
type Runs struct{ c *core }
