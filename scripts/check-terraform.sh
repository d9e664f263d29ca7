#!/usr/bin/env bash
# The Terraform tree loaded into Terraform, offline (no AWS account):
#   1. terraform fmt -check -recursive terraform
#   2. init -backend=false + validate of every root (bootstrap,
#      environments/*), against the committed .terraform.lock.hcl
#      (-lockfile=readonly: a provider that does not match it fails)
#   3. terraform test in every directory with tests/*.tftest.hcl (the
#      environments and the modules that carry logic), all under
#      mock_provider "aws": nothing is created, no credentials are read.
# Providers come from a local plugin directory when there is one
# (TF_PLUGIN_DIR, or the folder holding registry.terraform.io/hashicorp/aws
# found on this machine), otherwise from the registry (GitHub runners).
# Each step prints its wall time. Under CI=true a missing terraform is a
# failure, elsewhere a warning. Run from anywhere:
#   scripts/check-terraform.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v terraform >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then
    echo "check-terraform: terraform unavailable under CI=true" >&2
    exit 1
  fi
  echo "check-terraform: skipping: terraform unavailable (set CI=true to make this a failure)" >&2
  exit 0
fi

# No CLI configuration: nothing from ~/.terraformrc (and no warning about
# its absence).
export TF_CLI_CONFIG_FILE=/dev/null TF_IN_AUTOMATION=1 TF_INPUT=0

plugin_dir=${TF_PLUGIN_DIR:-}
if [ -z "$plugin_dir" ]; then
  for d in /opt/tf-plugins "$HOME/.terraform.d/plugins" /usr/share/terraform/plugins; do
    if compgen -G "$d/registry.terraform.io/hashicorp/aws/*/*/terraform-provider-aws_*" >/dev/null; then
      plugin_dir=$d
      break
    fi
  done
fi
if [ -z "$plugin_dir" ]; then
  # The way ../shared/TOOLS.md finds it, without walking /proc and /sys.
  found=$(find / -xdev \( -path /proc -o -path /sys \) -prune -o -name 'terraform-provider-aws_*' -path '*registry.terraform.io*' -print 2>/dev/null | head -1 || true)
  [ -z "$found" ] || plugin_dir=${found%%/registry.terraform.io/*}
fi
init_flags=(-backend=false -input=false -no-color)
if [ -n "$plugin_dir" ]; then
  echo "providers from $plugin_dir (offline)"
  init_flags+=("-plugin-dir=$plugin_dir")
else
  echo "providers from the registry"
fi

status=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
now() { date +%s.%N; }
took() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.1f s", a - b }'; }
start_all=$(now)

echo "== terraform fmt"
t=$(now)
if ! terraform fmt -check -recursive -diff terraform; then
  echo "check-terraform: unformatted files above: terraform fmt -recursive terraform" >&2
  status=1
fi
echo "   $(took "$t")"

# init DIR [extra flags]: quiet on success, the log on failure.
init() {
  local dir=$1
  shift
  if ! terraform -chdir="$dir" init "${init_flags[@]}" "$@" >"$logs/init.log" 2>&1; then
    cat "$logs/init.log"
    echo "check-terraform: terraform init failed in $dir" >&2
    return 1
  fi
}

echo "== terraform init + validate (roots)"
for dir in terraform/bootstrap terraform/environments/*/; do
  dir=${dir%/}
  case $(basename "$dir") in _*) continue ;; esac
  t=$(now)
  if [ ! -f "$dir/.terraform.lock.hcl" ]; then
    echo "check-terraform: $dir has no .terraform.lock.hcl (terraform providers lock -platform=linux_amd64)" >&2
    status=1
    continue
  fi
  if init "$dir" -lockfile=readonly && terraform -chdir="$dir" validate -no-color >"$logs/validate.log" 2>&1; then
    echo "   $dir: $(took "$t")"
  else
    cat "$logs/validate.log" 2>/dev/null || true
    echo "check-terraform: $dir does not validate" >&2
    status=1
  fi
done

echo "== terraform test"
# Test directories: the environments and every module with tests/.
# Two at a time (each is mostly one CPU of provider plugin work).
mapfile -t test_dirs < <(find terraform -path '*/.terraform' -prune -o -name '*.tftest.hcl' -path '*/tests/*' -print |
  xargs -r -n1 dirname | xargs -r -n1 dirname | sort -u)
run_tests() { # run_tests DIR: prints one summary line, the log on failure
  local dir=$1 t log
  t=$(now)
  log="$logs/$(echo "$dir" | tr / _).log"
  local lockflag=()
  [ -f "$dir/.terraform.lock.hcl" ] && [ -n "$(git ls-files "$dir/.terraform.lock.hcl" 2>/dev/null)" ] && lockflag=(-lockfile=readonly)
  if terraform -chdir="$dir" init "${init_flags[@]}" "${lockflag[@]}" >"$log" 2>&1 &&
    terraform -chdir="$dir" test -no-color >>"$log" 2>&1; then
    echo "   $dir: $(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$log" | tail -1) ($(took "$t"))"
  else
    cat "$log"
    echo "check-terraform: terraform test failed in $dir ($(took "$t"))" >&2
    return 1
  fi
}
export -f run_tests now took
export logs
init_flags_str=$(printf '%q ' "${init_flags[@]}")
export init_flags_str
if ! printf '%s\n' "${test_dirs[@]}" | xargs -P 2 -I{} bash -c 'eval "init_flags=($init_flags_str)"; run_tests "$1"' _ {}; then
  status=1
fi
[ ${#test_dirs[@]} -gt 0 ] || { echo "check-terraform: no terraform tests found" >&2; status=1; }

echo "== terraform checks: $(took "$start_all") in all"
exit $status
