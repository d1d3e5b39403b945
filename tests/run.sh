#!/usr/bin/env bash
# The whole test suite: unit tests, store contract tests and end-to-end tests over HTTP, each end-to-end
# and contract test on both DynamoDB engines (embedded dynoxide, and moto's server started by the harness).
# Then python-scim's scim2-tester against scim-local (tests/scim2_tester.sh, which installs it into .venv).
# First, the agreement of infra/template.yaml with the workspace's Lambda functions (infra/test_lambda_settings.py).
# Installs moto into .venv on first use. Extra arguments go to `cargo test` (e.g. a test-name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import moto.server" >/dev/null 2>&1; then
  echo "tests/run.sh: installing moto[server] into .venv (second DynamoDB engine for the tests)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]>=5.1,<6"
fi
export SCIM_MOTO_PYTHON="$PWD/.venv/bin/python"
# The Lambda functions' settings: the template, the workspace's Lambda binaries and their Cargo metadata agree
# (offline, about a second; infra/test_lambda_settings.py).
.venv/bin/python infra/test_lambda_settings.py
tests/install-chromium.sh  # Debian's chromium and chromedriver, for the operator page's browser test
cargo test --workspace "$@"
tests/scim2_tester.sh  # python-scim's scim2-tester against scim-local: every check must pass
