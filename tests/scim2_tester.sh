#!/usr/bin/env bash
# Conformance check by a third-party SCIM client: python-scim's scim2-tester (run through `scim2 test`)
# against the debug `scim-local` binary, with every check enabled and no configuration overrides.
# Exits non-zero if any check fails (or errors), so tests/run.sh and CI fail with it.
#
# Installs scim2-cli and scim2-tester into .venv on first use (the venv tests/run.sh creates for moto).
# Builds and runs ${CARGO_TARGET_DIR:-target}/debug/scim-local (after `cargo test --workspace` the build only
# links the binary, and the binary is never stale); set SCIM_LOCAL_BIN to test another build instead.
# The server gets a free loopback port, its own temporary data directory and a random token, and is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

venv_python="$PWD/.venv/bin/python"
if ! "$venv_python" -c "import scim2_cli, scim2_tester" >/dev/null 2>&1; then
  echo "tests/scim2_tester.sh: installing scim2-cli and scim2-tester into .venv"
  [ -x "$venv_python" ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "scim2-cli>=0.6,<0.7" "scim2-tester>=0.5.2,<0.6"
fi

if [ -n "${SCIM_LOCAL_BIN:-}" ]; then
  bin="$SCIM_LOCAL_BIN"
else
  cargo build --quiet -p scim-local --bin scim-local
  bin="${CARGO_TARGET_DIR:-target}/debug/scim-local"
fi
if [ ! -x "$bin" ]; then
  echo "tests/scim2_tester.sh: no executable scim-local at $bin" >&2
  exit 1
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port: bind port 0, read the port the system chose, release it.
port="$("$venv_python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
token="$("$venv_python" -c 'import secrets; print(secrets.token_hex(32))')"

SCIM_LISTEN="127.0.0.1:$port" SCIM_DATA_DIR="$work/data" SCIM_BEARER_TOKEN="$token" SCIM_BASE_PATH=/scim/v2 \
  SCIM_PROFILE=default "$bin" >"$work/server.log" 2>&1 &
server_pid=$!

base="http://127.0.0.1:$port/scim/v2"
for _ in $(seq 1 100); do
  if grep -q "SCIM server ready" "$work/server.log" 2>/dev/null; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "tests/scim2_tester.sh: scim-local exited early:" >&2
    grep -v "Secret Token\|Try:" "$work/server.log" >&2 || true
    exit 1
  fi
  sleep 0.1
done
grep -q "SCIM server ready" "$work/server.log" || { echo "tests/scim2_tester.sh: scim-local did not start" >&2; exit 1; }

echo "tests/scim2_tester.sh: scim2-tester $("$venv_python" -c 'import importlib.metadata as m; print(m.version("scim2-tester"))') against $base"
# The token goes through the environment, not the command line (other users can read argument lists).
start=$(date +%s)
status=0
SCIM_CLI_HEADERS="Authorization: Bearer $token" .venv/bin/scim2 --url "$base" test >"$work/report.txt" 2>&1 || status=$?
passed=$(grep -c '^SUCCESS ' "$work/report.txt" || true)
# Every other status counts as a failure, SHOULD-level ones (COMPLIANT, DEVIATION, ...) included.
failed=$(grep -cE '^(COMPLIANT|ACCEPTABLE|DEVIATION|ERROR|CRITICAL|SKIPPED) ' "$work/report.txt" || true)
if [ "$status" -ne 0 ] || [ "$passed" -eq 0 ] || [ "$failed" -ne 0 ]; then
  cat "$work/report.txt"  # with each check's reason
  echo "tests/scim2_tester.sh: FAILED: $passed checks passed, $failed did not (scim2 test exit status $status)" >&2
  exit 1
fi
grep -v '^  ' "$work/report.txt"  # the checks' titles
echo "tests/scim2_tester.sh: all $passed checks passed in $(( $(date +%s) - start )) s"
