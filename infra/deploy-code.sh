#!/usr/bin/env bash
# Push new code to the deployed stack's functions with `cargo lambda deploy`, after
# `cargo lambda build --release --arm64`:
#
#   infra/deploy-code.sh [--stack NAME] [--dry-run] [FUNCTION...]     (FUNCTION: users, groups, ...; default all)
#
# Each function is the one SAM created (name and role read from the stack), with the memory, timeout,
# runtime and environment infra/template.yaml declares (resolved with the stack's parameters); a function
# the stack does not hold is refused, so no stray function or role is ever created. Stack name: --stack,
# else $SCIM_STACK, else infra/samconfig.toml's stack_name. AWS credentials and region from the usual
# environment. Installs cargo-lambda, zig, boto3 and PyYAML into .venv-lambda on first use.
# How and why: docs/deploy.md ("Update the code with cargo lambda deploy"); the work is infra/deploy_code.py.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-lambda
if ! { [ -x "$venv/bin/cargo-lambda" ] && "$venv/bin/python" -c "import boto3, yaml" 2>/dev/null; }; then
  echo "infra/deploy-code.sh: installing cargo-lambda, ziglang, boto3 and PyYAML into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check cargo-lambda ziglang boto3 pyyaml
fi
export PATH="$PWD/$venv/bin:$PATH"
exec "$venv/bin/python" infra/deploy_code.py "$@"
