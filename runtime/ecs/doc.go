// Package ecs is the workspace runtime on Amazon ECS (on EC2): a workspace
// is a standalone awsvpc task of the workspace task definition (the agent
// container plus the credential-proxy sidecar), started with RunTask and
// stopped with StopTask. It implements workers.Runtime.
//
// Start is idempotent by the RunTask clientToken (the StartSpec token), so a
// redelivered command cannot start a second task. Every task carries
// startedBy (one value per deployment, Options.StartedBy) and a group
// ("conversation:<id>" or "pool") that survive StopTask, and tags
// (conversation, tenant, pool, token) that do not. List finds tasks by
// startedBy (ListTasks) and describes them in batches of 100.
//
// The backend reaches a task's agent over the VPC at http://<ENI private
// IP>:9000 (Transport). Readiness is not polled here: it arrives as an ECS
// Task State Change event (EventBridge → SQS → state subscriber).
//
// Throttling is absorbed by the SDK's adaptive retryer; capacity failures
// (RESOURCE:*) wrap workspace.ErrCapacity; other RunTask failures are
// terminal. See docs/aws.md.
package ecs
