#!/bin/sh
# Creates the AWS resources of terraform/modules/messaging for LocalStack (or
# any SQS/EventBridge/S3 emulator): the command queues and the task-events
# queue with their dead-letter queues and redrive policies, the EventBridge
# "ECS Task State Change" rule targeting the task-events queue, and the
# workspace-files bucket.
#
# Names come from deploy/names.json and the rule's pattern from the Terraform
# template, so neither can drift from Terraform; the numbers below mirror the
# messaging module's defaults, and the tests in localstack/ check they
# agree (localstack/resources_test.go, bucket_test.go).
#
# LocalStack runs this from /etc/localstack/init/ready.d (docker-compose.yml
# mounts the files). Elsewhere, e.g. against the in-process emulator in tests:
#   AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_BIN=/usr/bin/aws \
#   WORKSPACED_NAMES_FILE=deploy/names.json \
#   WORKSPACED_PATTERN_TEMPLATE=terraform/modules/messaging/templates/task-state-change-pattern.json.tftpl \
#   localstack/init/ready.d/10-workspaced-resources.sh
#
# Environment (all optional):
#   SQS_QUEUE_PREFIX              queue name prefix, as the backend's (default empty)
#   WORKSPACED_NAME_PREFIX        rule/bucket name prefix (default workspaced-local)
#   WORKSPACED_CLUSTER_ARN        cluster whose task events the rule matches
#   WORKSPACED_NAMES_FILE         deploy/names.json
#   WORKSPACED_PATTERN_TEMPLATE   terraform/.../task-state-change-pattern.json.tftpl
#   AWS_ENDPOINT_URL              endpoint for AWS_BIN (--endpoint-url); unset: use awslocal
#   AWS_BIN                       aws CLI to use with AWS_ENDPOINT_URL (default aws)
#   AWS_DEFAULT_REGION            default us-east-1
# Idempotent: running it twice changes nothing.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." 2>/dev/null && pwd || true)

names_file=${WORKSPACED_NAMES_FILE:-/etc/localstack/workspaced/names.json}
[ -f "$names_file" ] || names_file="$repo/deploy/names.json"
pattern_template=${WORKSPACED_PATTERN_TEMPLATE:-/etc/localstack/workspaced/task-state-change-pattern.json.tftpl}
[ -f "$pattern_template" ] || pattern_template="$repo/terraform/modules/messaging/templates/task-state-change-pattern.json.tftpl"

region=${AWS_DEFAULT_REGION:-us-east-1}
export AWS_DEFAULT_REGION="$region"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_PAGER=""
account_id=000000000000
queue_prefix=${SQS_QUEUE_PREFIX:-}
name_prefix=${WORKSPACED_NAME_PREFIX:-workspaced-local}
cluster_arn=${WORKSPACED_CLUSTER_ARN:-arn:aws:ecs:$region:$account_id:cluster/$name_prefix}

# Mirrors of terraform/modules/messaging (variables.tf defaults, queues.tf locals).
command_visibility_timeout=120
task_events_visibility_timeout=120
max_receive_count=5
queue_retention=345600 # 4 days
dlq_retention=1209600  # 14 days
workspace_files_expiration_days=90
noncurrent_version_expiration_days=30
abort_incomplete_upload_days=7

awscli() {
  if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
    "${AWS_BIN:-aws}" --endpoint-url "$AWS_ENDPOINT_URL" --output text "$@"
  else
    awslocal --output text "$@"
  fi
}

# name KEY.PATH prints a string from names.json. python3 is in every
# LocalStack image and is a dependency of Debian's awscli.
name() {
  python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[k]
print(v)' "$names_file" "$1"
}

dlq_suffix=$(name dead_letter_suffix)
started_by=$(name started_by)
bucket="$name_prefix-$account_id-$(name workspace_files_bucket_suffix)"
rule="$name_prefix-task-state-change"

# ARNs are derived, not looked up: every CLI call costs seconds.
sqs_arn() { echo "arn:aws:sqs:$region:$account_id:$1"; }

# create_queue NAME VISIBILITY: the DLQ, then the queue, then its redrive
# policy (set apart: create-queue must repeat identical attributes to stay
# idempotent, and SQS rewrites the policy JSON). Sets queue_url.
create_queue() {
  q="$queue_prefix$1"
  awscli sqs create-queue --queue-name "$q$dlq_suffix" \
    --attributes "{\"MessageRetentionPeriod\":\"$dlq_retention\"}" >/dev/null
  queue_url=$(awscli sqs create-queue --queue-name "$q" --attributes \
    "{\"VisibilityTimeout\":\"$2\",\"MessageRetentionPeriod\":\"$queue_retention\",\"ReceiveMessageWaitTimeSeconds\":\"20\"}")
  redrive="{\\\"deadLetterTargetArn\\\":\\\"$(sqs_arn "$q$dlq_suffix")\\\",\\\"maxReceiveCount\\\":\\\"$max_receive_count\\\"}"
  awscli sqs set-queue-attributes --queue-url "$queue_url" --attributes "{\"RedrivePolicy\":\"$redrive\"}" >/dev/null
  echo "queue $q (visibility ${2}s) -> $q$dlq_suffix (maxReceiveCount $max_receive_count)"
}

create_queue "$(name queues.workspace_requested)" "$command_visibility_timeout"
create_queue "$(name queues.workspace_released)" "$command_visibility_timeout"
create_queue "$(name queues.task_events)" "$task_events_visibility_timeout"
events_queue="$queue_prefix$(name queues.task_events)"
events_url=$queue_url
events_arn=$(sqs_arn "$events_queue")
events_dlq_arn=$(sqs_arn "$events_queue$dlq_suffix")

# The rule's pattern: the Terraform template with its two ${} variables.
pattern=$(sed -e "s|\${cluster_arn}|$cluster_arn|g" -e "s|\${started_by_prefix}|$started_by|g" "$pattern_template")
rule_arn=$(awscli events put-rule --name "$rule" --event-pattern "$pattern" \
  --description "ECS Task State Change of workspace tasks (startedBy $started_by*) in $cluster_arn" \
  --query RuleArn)
awscli events put-targets --rule "$rule" --targets \
  "[{\"Id\":\"task-events-queue\",\"Arn\":\"$events_arn\",\"RetryPolicy\":{\"MaximumEventAgeInSeconds\":86400,\"MaximumRetryAttempts\":185},\"DeadLetterConfig\":{\"Arn\":\"$events_dlq_arn\"}}]" >/dev/null

# Queue policy as in Terraform: only this rule may send.
policy="{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"AllowTaskStateChangeRule\",\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"events.amazonaws.com\"},\"Action\":\"sqs:SendMessage\",\"Resource\":\"$events_arn\",\"Condition\":{\"ArnEquals\":{\"aws:SourceArn\":\"$rule_arn\"}}}]}"
escaped=$(printf '%s' "$policy" | sed 's/"/\\"/g')
awscli sqs set-queue-attributes --queue-url "$events_url" --attributes "{\"Policy\":\"$escaped\"}" >/dev/null
echo "rule $rule -> $events_queue"

# Outside us-east-1 S3 wants the region as LocationConstraint (and refuses
# it in us-east-1); docker-compose.yml runs LocalStack in ap-northeast-1.
if ! awscli s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; then
  if [ "$region" = us-east-1 ]; then
    awscli s3api create-bucket --bucket "$bucket" >/dev/null
  else
    awscli s3api create-bucket --bucket "$bucket" --create-bucket-configuration "LocationConstraint=$region" >/dev/null
  fi
fi
awscli s3api put-bucket-versioning --bucket "$bucket" --versioning-configuration Status=Enabled
awscli s3api put-bucket-encryption --bucket "$bucket" --server-side-encryption-configuration \
  '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"},"BucketKeyEnabled":true}]}'
# The rules of aws_s3_bucket_lifecycle_configuration.workspace_files, in
# its order (localstack/bucket_test.go compares them with the module).
awscli s3api put-bucket-lifecycle-configuration --bucket "$bucket" --lifecycle-configuration \
  "{\"Rules\":[{\"ID\":\"expire-workspace-archives\",\"Status\":\"Enabled\",\"Filter\":{},\"Expiration\":{\"Days\":$workspace_files_expiration_days},\"NoncurrentVersionExpiration\":{\"NoncurrentDays\":$noncurrent_version_expiration_days},\"AbortIncompleteMultipartUpload\":{\"DaysAfterInitiation\":$abort_incomplete_upload_days}},{\"ID\":\"remove-expired-delete-markers\",\"Status\":\"Enabled\",\"Filter\":{},\"Expiration\":{\"ExpiredObjectDeleteMarker\":true}}]}"
echo "bucket $bucket"
echo "workspaced resources ready"
