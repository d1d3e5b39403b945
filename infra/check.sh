#!/usr/bin/env bash
# Lint the SAM template offline: cfn-lint (runs the SAM transform locally; without and with the custom
# domain's parameters) and `sam validate --lint`.
# Idempotent: creates the virtualenv .venv-infra in the repository root on first use and reuses it.
# Needs: Python 3 with venv. No AWS account or credentials (a region is set only because SAM wants one).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv-infra"
template="infra/template.yaml"

run() {
  echo "+ $*" >&2
  "$@"
}

if [[ ! -x "$venv/bin/python" ]]; then
  run python3 -m venv "$venv"
fi
if [[ ! -x "$venv/bin/cfn-lint" || ! -x "$venv/bin/sam" ]]; then
  run "$venv/bin/pip" install --quiet --upgrade pip
  run "$venv/bin/pip" install --quiet cfn-lint aws-sam-cli
fi

run "$venv/bin/cfn-lint" --version
run "$venv/bin/cfn-lint" "$template"
# Again with the optional custom domain on (DomainName and CertificateArn set), on a copy of the template.
with_domain="$(mktemp -d)"
trap 'rm -rf "$with_domain"' EXIT
run "$venv/bin/python" infra/template_with_domain.py "$template" "$with_domain/template.yaml"
run "$venv/bin/cfn-lint" "$with_domain/template.yaml"

export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
run "$venv/bin/sam" --version
run "$venv/bin/sam" validate --lint -t "$template"

echo "infra/check.sh: $template is clean" >&2
