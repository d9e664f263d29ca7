#!/usr/bin/env bash
# Static checks of the deployment files (no AWS account, no terraform CLI):
#   1. tfsec v1.26.0 on terraform/ (installed with `go install` on first use,
#      ~1-7 min depending on the machine; cached in $(go env GOPATH)/bin).
#      Findings fail the run; accepted ones are ignored in place with a
#      reason (#tfsec:ignore:<rule> ...).
#   2. docker-compose config -q (every profile).
#   3. sh -n of the LocalStack init scripts.
#   4. The fast Terraform tests: fmt, parse, module interfaces, templates.
# The slower LocalStack tests (AWS CLI against the in-process emulator, the
# SQS bus on the created queues) run with the rest: go test ./localstack.
# Under CI=true a missing tool is a failure, elsewhere a warning.
set -euo pipefail
cd "$(dirname "$0")/.."

TFSEC_VERSION=v1.26.0
status=0
missing() { # missing <what>
  if [ "${CI:-}" = true ]; then
    echo "check-deploy: $1 unavailable under CI=true" >&2
    status=1
  else
    echo "check-deploy: skipping: $1 unavailable (set CI=true to make this a failure)" >&2
  fi
}

echo "== tfsec $TFSEC_VERSION"
gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
tfsec="$gobin/tfsec"
stamp="$gobin/.tfsec-$TFSEC_VERSION"
if [ "${1:-}" = --install-tools ]; then
  # .ci/run starts this early in the background: compiling tfsec takes
  # minutes on a fresh machine and overlaps with the image builds.
  if [ ! -x "$tfsec" ] || [ ! -e "$stamp" ]; then
    go install "github.com/aquasecurity/tfsec/cmd/tfsec@$TFSEC_VERSION" && touch "$stamp"
  fi
  exit
fi
if [ ! -x "$tfsec" ] || [ ! -e "$stamp" ]; then
  echo "installing github.com/aquasecurity/tfsec/cmd/tfsec@$TFSEC_VERSION"
  go install "github.com/aquasecurity/tfsec/cmd/tfsec@$TFSEC_VERSION"
  touch "$stamp"
fi
# One run per root module: given terraform/, tfsec scans only one root.
# The environments pull in terraform/stack and, through it, every module.
for root in terraform/bootstrap terraform/environments/*/; do
  echo "-- $root"
  if ! "$tfsec" "$root" --no-color --concise-output --exclude-downloaded-modules --no-module-downloads; then
    echo "check-deploy: tfsec found problems in $root: fix them, or ignore one in place with #tfsec:ignore:<rule> <reason>" >&2
    status=1
  fi
done

echo "== docker-compose config"
if command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  compose=()
  missing "docker-compose"
fi
if [ ${#compose[@]} -gt 0 ]; then
  "${compose[@]}" --profile sqs --profile images config -q || status=1
fi

echo "== localstack init scripts"
for f in localstack/init/ready.d/*.sh; do
  sh -n "$f" || status=1
  [ -x "$f" ] || { echo "check-deploy: $f is not executable (LocalStack skips it)" >&2; status=1; }
done

echo "== GitHub workflows"
# Parsed with PyYAML (Debian's python3-yaml; docker-compose v1 depends on it).
if /usr/bin/env python3 -c 'import yaml' 2>/dev/null; then
  python3 - .github/workflows/*.yml <<'PY' || status=1
import sys, yaml
bad = 0
def fail(msg):
    global bad
    print("check-deploy:", msg, file=sys.stderr)
    bad = 1
for path in sys.argv[1:]:
    text = open(path).read()
    wf = yaml.safe_load(text)
    if not isinstance(wf, dict) or "jobs" not in wf:
        fail(f"{path}: not a workflow")
        continue
    for word in ("aws-access-key-id", "aws-secret-access-key", "AWS_SECRET_ACCESS_KEY"):
        if word in text:
            fail(f"{path}: long-lived AWS keys ({word}); use OIDC role assumption")
    top = (wf.get("permissions") or {})
    for name, job in wf["jobs"].items():
        steps = job.get("steps") or []
        uses = [s.get("uses", "") for s in steps]
        for u in uses:
            if u and "@" not in u and not u.startswith("./"):
                fail(f"{path}: job {name}: unpinned action {u}")
        if any(u.startswith("aws-actions/configure-aws-credentials") for u in uses):
            perms = job.get("permissions", top) or {}
            if perms.get("id-token") != "write":
                fail(f"{path}: job {name} assumes an AWS role without id-token: write")
            if any("apply" in (s.get("run") or "") for s in steps) and "environment" not in job:
                fail(f"{path}: job {name} applies Terraform outside a protected environment")
sys.exit(bad)
PY
else
  missing "python3 with PyYAML (workflow checks)"
fi

echo "== terraform tests"
go test -count=1 ./terraform/ || status=1

if [ $status -ne 0 ]; then
  echo "check-deploy: FAILED" >&2
else
  echo "check-deploy: ok"
fi
exit $status
