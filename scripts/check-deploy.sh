#!/usr/bin/env bash
# Static checks of the deployment files (no AWS account):
#   1. trivy config v0.74.0 on terraform/ (built with `go install` on first
#      use, ~6 min on two cores; cached in $(go env GOPATH)/bin; .ci/run
#      starts the build early in the background with --install-tools).
#      Findings fail the run; accepted ones are ignored in place with a
#      reason (#trivy:ignore:AVD-AWS-NNNN <reason>), and an ignore that
#      ignores nothing fails too (a second scan without the ignores must
#      report each one's finding on the block below it).
#   2. scripts/check-terraform.sh: terraform fmt -check, init + validate of
#      every root against its committed lock file, terraform test of the
#      environments and modules (mocked provider, offline).
#   3. docker-compose config -q (every profile).
#   4. sh -n of the LocalStack init scripts.
#   5. The GitHub workflows: pinned actions, OIDC, no plan artifact in the
#      clear, providers pinned by the lock files.
#   6. The fast Go tests of the Terraform tree: go test ./terraform.
# The slower LocalStack tests (AWS CLI against the in-process emulator, the
# SQS bus on the created queues) run with the rest: go test ./localstack.
# Under CI=true a missing tool is a failure, elsewhere a warning.
set -euo pipefail
cd "$(dirname "$0")/.."

TRIVY_VERSION=v0.74.0
status=0
missing() { # missing <what>
  if [ "${CI:-}" = true ]; then
    echo "check-deploy: $1 unavailable under CI=true" >&2
    status=1
  else
    echo "check-deploy: skipping: $1 unavailable (set CI=true to make this a failure)" >&2
  fi
}

gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
trivy="$gobin/trivy"
stamp="$gobin/.trivy-$TRIVY_VERSION"
install_trivy() {
  # trivy's module needs encoding/json/v2 (GOEXPERIMENT=jsonv2).
  GOEXPERIMENT=jsonv2 go install "github.com/aquasecurity/trivy/cmd/trivy@$TRIVY_VERSION" && touch "$stamp"
}
if [ "${1:-}" = --install-tools ]; then
  # .ci/run starts this early in the background: compiling trivy takes
  # minutes on a fresh machine and overlaps with the image builds.
  if [ ! -x "$trivy" ] || [ ! -e "$stamp" ]; then
    install_trivy
  fi
  exit
fi

echo "== trivy config $TRIVY_VERSION"
if [ ! -x "$trivy" ] || [ ! -e "$stamp" ]; then
  echo "installing github.com/aquasecurity/trivy/cmd/trivy@$TRIVY_VERSION"
  install_trivy || true
fi
if [ -x "$trivy" ] && [ -e "$stamp" ]; then
  trivy_flags=(config --skip-check-update --disable-telemetry --skip-version-check --quiet)
  # Given terraform/, trivy evaluates every root (bootstrap, each
  # environment) and the modules through them.
  if ! "$trivy" "${trivy_flags[@]}" --table-mode detailed --exit-code 1 terraform; then
    echo "check-deploy: trivy found problems: fix them, or ignore one in place with #trivy:ignore:AVD-AWS-NNNN <reason>" >&2
    status=1
  fi
  # Ignores that ignore nothing: scan a copy without them; each ignore's
  # finding must show on the block it annotates.
  scan=$(mktemp -d)
  git ls-files -z terraform deploy | tar --null -cf - -T - | tar -xf - -C "$scan"
  grep -rl --include='*.tf' 'trivy:ignore:' "$scan/terraform" | xargs -r sed -i 's/trivy:ignore:/trivy-ignore-checked:/'
  if "$trivy" "${trivy_flags[@]}" -f json -o "$scan/findings.json" "$scan/terraform"; then
    python3 - "$scan/findings.json" <<'PY' || status=1
import json, os, re, subprocess, sys
findings = {}
for res in json.load(open(sys.argv[1])).get("Results") or []:
    for m in res.get("Misconfigurations") or []:
        line = (m.get("CauseMetadata") or {}).get("StartLine") or 0
        findings.setdefault((os.path.normpath(os.path.join("terraform", res["Target"])), m["ID"]), set()).add(line)
bad = 0
files = subprocess.run(["git", "ls-files", "terraform/*.tf", "terraform/**/*.tf"], capture_output=True, text=True, check=True).stdout.split()
for path in sorted(set(files)):
    lines = open(path).read().split("\n")
    for i, text in enumerate(lines):
        m = re.match(r"\s*#\s*trivy:ignore:(?:AVD-)?([A-Z]+-\d+)", text)
        if not m:
            continue
        # The annotated block: from the first non-comment line below the
        # ignore to its closing brace at the same indentation.
        start = next((j for j in range(i + 1, len(lines)) if not lines[j].lstrip().startswith("#")), len(lines))
        indent = len(lines[start]) - len(lines[start].lstrip()) if start < len(lines) else 0
        end = next((j for j in range(start + 1, len(lines)) if lines[j] == " " * indent + "}"), start)
        hits = findings.get((path, m.group(1)), set())
        if not any(start + 1 <= l <= end + 1 for l in hits):
            print(f"check-deploy: {path}:{i + 1}: trivy:ignore:{m.group(1)} ignores nothing (no such finding on the block below): remove it", file=sys.stderr)
            bad = 1
sys.exit(bad)
PY
  else
    echo "check-deploy: trivy failed on the copy without ignores" >&2
    status=1
  fi
  rm -rf "$scan"
else
  missing "trivy $TRIVY_VERSION (GOEXPERIMENT=jsonv2 go install github.com/aquasecurity/trivy/cmd/trivy@$TRIVY_VERSION)"
fi

echo "== terraform"
scripts/check-terraform.sh || status=1

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
import re, sys, yaml
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
        for s in steps:
            run = s.get("run") or ""
            # Providers are pinned: init must use the committed lock file
            # as is, between plan and apply alike.
            for line in run.splitlines():
                if re.search(r"\bterraform\b.*\binit\b", line) and "-lockfile=readonly" not in line:
                    fail(f"{path}: job {name}: terraform init without -lockfile=readonly (providers re-resolved)")
            # A saved plan embeds a state snapshot (the Redis AUTH token):
            # it may leave the job only encrypted.
            if (s.get("uses") or "").startswith("actions/upload-artifact"):
                for p in str((s.get("with") or {}).get("path", "")).splitlines():
                    p = p.strip()
                    if re.search(r"tfplan|\.tfstate", p) and not p.endswith(".gpg"):
                        fail(f"{path}: job {name} uploads {p} unencrypted (a plan holds a state snapshot with secrets)")
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
