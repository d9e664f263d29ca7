// Package ecsdouble is a TEST DOUBLE of the Amazon ECS control plane, for
// tests only: production code never imports it.
//
// No ECS exists on a developer machine or in CI, and the in-process emulator
// (kumo) models too little of it (no clientToken idempotency, no startedBy,
// no ListTasks, no networking, no events). The double serves the real ECS
// wire protocol (awsJson1_1, X-Amz-Target AmazonEC2ContainerServiceV20141113.*)
// for RunTask, StopTask, DescribeTasks, ListTasks and TagResource, so the
// runtime under test uses the real SDK client unchanged, and it follows the
// documented semantics (see docs/aws.md):
//
//   - clientToken idempotency per cluster; the same token with other
//     parameters is a ConflictException;
//   - startedBy and group recorded and filterable (ListTasks by startedBy is
//     exact and may be combined only with cluster);
//   - tags returned only with include=TAGS, and deleted by StopTask;
//   - lastStatus PROVISIONING → PENDING → RUNNING → (desired STOPPED) →
//     STOPPING → DEPROVISIONING → STOPPED with detail.version increasing on
//     every change; the ENI attachment gets its private IP at PENDING;
//   - failures[] on its one pretend container instance
//     (ContainerInstanceArn) when its capacity is exhausted
//     (RESOURCE:MEMORY by default), its ENIs are (RESOURCE:ENI), its agent
//     is disconnected (AGENT), or injected; ThrottlingException above a
//     configured rate or injected; InvalidParameterException over ECS's
//     documented limits on tags, startedBy and clientToken (limits.go);
//   - SigV4 signatures verified (region, ecs service, known key, date);
//   - with Options.IAM, every call authorized as IAM would authorize it:
//     the caller's access key names a role whose policy is rendered from
//     the Terraform code (internal/tfpolicy), RunTask implies iam:PassRole
//     of the task and execution roles, and a denied call is an
//     AccessDeniedException in AWS's message shape (iam.go);
//   - an "ECS Task State Change" EventBridge envelope for every transition,
//     delivered through an EventSink (PutEvents to EventBridge, straight to
//     SQS, or a function), with hooks to drop, duplicate or reorder events;
//     its field set is compared with AWS's documented samples
//     (events/testdata/aws).
//
// With Options.Docker set, each task runs for real: the task definition's
// containers (rendered from the Terraform template) become Docker containers
// sharing one network namespace; the first container in dependsOn order
// holds the namespace on a bridge network, and its bridge address is the
// task's "ENI" IP, reachable from the host. With Options.SecurityGroups,
// security groups are Docker networks: the namespace joins exactly the
// networks of the task's groups (an internal one for a group with no route
// out), so a task reaches only what its groups reach. Without Docker the
// double is a pure state machine that hands out fake 10.0.0.0/16
// addresses.
//
// What it does not model: placement, container instances, capacity
// providers' scaling (tasks wait in PROVISIONING in AWS; here capacity only
// produces failures), service tasks, task definition registration (one
// fixed family, revision 1), subnets beyond validation, and awslogs
// (containers use Docker's default log driver). Secrets get placeholder
// values unless Options.Secrets provides them.
//
// Typical use:
//
//	d := ecsdouble.Start(t, ecsdouble.Options{Docker: cli, Sink: ecsdouble.EventBridgeSink{Client: eb}})
//	rt, _ := ecs.New(d.AWSConfig(), ecs.Options{Cluster: d.ClusterName, TaskDefinition: d.Family, Endpoint: d.URL, ...})
//	snap, _ := d.WaitStatus(ctx, info.ID, "RUNNING")
package ecsdouble
