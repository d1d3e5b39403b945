#!/usr/bin/env bash
# The `cargo lambda deploy` loop checked without AWS (not part of tests/run.sh or CI: the arm64 release
# build takes several minutes cold):
#   1. infra/check.sh lints the template (and makes .venv-infra, whose SAM translator step 3 uses);
#   2. cargo lambda build --release --arm64 --output-format zip for every function (infra/build-lambda.sh,
#      which also prints each zip's size);
#   3. moto's server (tests/moto_server.py) gets the stack as SAM's transform makes it, and
#      infra/deploy-code.sh deploys every function to it (cargo lambda deploy --endpoint-url); each
#      function's configuration is read back, printed, and compared with the template's
#      (infra/deploy_check.py says exactly what is checked).
# Usage: infra/deploy-check.sh [--no-build]. Honours CARGO_TARGET_DIR and SCIM_MOTO_PYTHON (a Python with
# moto[server]; default .venv, installed on first use as tests/run.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

infra/check.sh
if [ "${1:-}" != "--no-build" ]; then
  infra/build-lambda.sh
fi

moto_python="${SCIM_MOTO_PYTHON:-$root/.venv/bin/python}"
if ! "$moto_python" -c "import moto.server" >/dev/null 2>&1; then
  echo "infra/deploy-check.sh: installing moto[server] into .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]>=5.1,<6"
  moto_python="$root/.venv/bin/python"
fi
# The wrapper's own virtualenv (cargo-lambda, boto3, PyYAML), made now rather than inside the check.
infra/deploy-code.sh --help >/dev/null

work=$(mktemp -d)
moto=""
cleanup() {
  if [ -n "$moto" ]; then kill "$moto" 2>/dev/null || true; wait "$moto" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkfifo "$work/moto-in"
"$moto_python" tests/moto_server.py "$port" < "$work/moto-in" > "$work/moto.log" 2>&1 &
moto=$!
exec 3> "$work/moto-in"   # moto_server.py stops when its standard input closes
for _ in $(seq 1 100); do grep -q ready "$work/moto.log" && break; sleep 0.2; done
grep -q ready "$work/moto.log" || { echo "infra/deploy-check.sh: moto did not start" >&2; cat "$work/moto.log" >&2; exit 1; }

target="${CARGO_TARGET_DIR:-$root/target}"
export PATH="$root/.venv-lambda/bin:$PATH"
AWS_DEFAULT_REGION=us-east-1 .venv-infra/bin/python infra/deploy_check.py "http://127.0.0.1:$port" "$target" \
  || { echo "infra/deploy-check.sh: failed; the end of moto's log:" >&2; tail -n 12 "$work/moto.log" >&2; exit 1; }
