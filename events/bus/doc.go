// Package bus builds workspaced's message bus: Watermill publishers and
// subscribers over Go channels (local, one process) or Amazon SQS
// (watermill-aws v1.0.2), and a Router whose middleware gives both the same
// retry and poison semantics. Handlers never know which bus they run on.
//
// # Choosing a bus
//
// New takes an Options whose Kind is KindGoChannel or KindSQS. Nothing here
// reads the environment; cmd/ maps config.Bus onto Options.
//
// # Publishing and handling
//
// Commands (Bus.Commands) is the one typed publisher: the API, the GC and
// the Docker watcher all publish through it, and it stamps the context's
// correlation ID (events.WithCorrelationID) on commands. Handle adapts a
// typed consumer (func(ctx, T) error) to a Router handler, decoding in one
// place and marking undecodable payloads terminal.
//
// # Topics and queues
//
// Topics are the events.Topic* constants. On SQS a topic is the queue
// QueuePrefix+topic, and its poison destination is that queue's dead-letter
// queue, QueuePrefix+topic+events.DeadLetterSuffix (see Queues). Queues are
// created by Terraform or the LocalStack init scripts, never by this package:
// New checks with GetQueueUrl that every queue the process will use exists
// and fails with ErrQueueNotFound naming each missing one.
//
// # Router middleware (outermost first)
//
//  1. poison: after the chain below gives up, publish the message to the
//     poison destination and ack it, so one bad message never blocks the
//     consumer. A message whose delivery was abandoned (shutdown) is nacked
//     instead.
//  2. correlation: make sure the message has a correlation_id (raw
//     EventBridge envelopes have none: their UUID is used), put it in the
//     message context (events.WithCorrelationID), copy it to produced
//     messages.
//  3. budget: one deadline for all attempts and backoff (RetryOptions.Budget).
//  4. retry: exponential backoff; skipped for terminal errors
//     (workspace.IsTerminal, the one "do not retry" marker; Handle marks
//     undecodable payloads with it).
//  5. attempt: a per-attempt timeout and the retries metric.
//  6. recoverer: a panic becomes an error, so it is retried and then
//     poisoned like any other failure.
//
// Watermill's own list (Recoverer, CorrelationID, Retry, PoisonQueue) is the
// same set in the opposite order: the first middleware added is the
// outermost, the poison queue must see the error only after retries, and the
// recoverer must sit inside Retry or a panic would bypass both.
//
// # Local bus persistence
//
// Watermill's gochannel drops messages published to a topic nobody has
// subscribed to yet, and its Persistent mode keeps every message forever and
// replays it to each new subscriber. Neither fits one long-running process,
// so the local bus holds messages for a topic until its first subscription
// and then hands them over (bounded by GoChannelOptions.Backlog; the oldest
// are dropped, with an error log, past it). Start order therefore does not
// matter: the API may publish before the workers' router subscribes.
// Publishing does not wait for a subscriber's ack (as with SQS); anything
// still in memory when the process exits is lost and the reconciler
// converges state from the runtime.
//
// # Shutdown
//
// Closing a Router (or the Bus) stops delivering new messages, waits up to
// DrainTimeout for in-flight handlers to finish and, on SQS, for their acks
// to be deleted from the queue, then ends the subscriptions. Messages
// received but not yet handled are made visible again at once
// (ChangeMessageVisibility 0) so another replica takes them.
package bus
