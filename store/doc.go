// Package store keeps workspaced's shared state in Redis (go-redis v9):
// conversation ownership and bindings to workspaces, workspace state with
// the last applied task-event version, provisioning locks, warm-pool
// inventory, last-use times and stream leases for idle GC, and per
// conversation change notifications over Redis pub/sub.
//
// Every change that touches more than one key or must compare-and-set is a
// single Lua script (see lua/), so concurrent API replicas, workers and
// event subscribers never interleave half-applied changes. Every key is an
// entry of one table, Schema: Go builds keys from it, the scripts' key
// helpers are generated from it, and docs/redis.md documents exactly it
// (package storetest checks what tests write against that document).
//
// A Store is one client shared by views (Conversations, Events, Pool,
// Leases, Activity), each owning a part of the state; it embeds them, so
// it satisfies every consumer's interface. A Store is safe for concurrent
// use. Times written to Redis come from the
// injected clock (Options.Now), so lock expiry, stream leases and idle
// queries are testable without waiting.
package store
