#!/usr/bin/env bash
# Conformance check by a third-party SCIM client: python-scim's scim2-tester (run through `scim2 test`)
# against the debug `scim-local` binary, once per built-in app profile (shared/profiles/*.json, `default`
# first), with every check enabled and no configuration overrides. Fails if any check fails or errors.
#
# One tester error is not counted, and only in its exact form (see tester_verdict below): after PATCH `add`
# of values to a multi-valued attribute that already has values, scim2-tester 0.5.2 expects the attribute
# to hold only the added values. RFC 7644 §3.5.2.1: "If the target location specifies a multi-valued
# attribute, a new value is added to the attribute" — the server appends, as it must. (Only profiles with
# a multi-valued extension attribute meet it: the tester first adds the whole extension, then each of its
# attributes, to the same user.)
#
# Installs scim2-cli and scim2-tester into .venv on first use (the venv tests/run.sh creates for moto).
# Builds and runs ${CARGO_TARGET_DIR:-target}/debug/scim-local (after `cargo test --workspace` the build only
# links the binary, and the binary is never stale); set SCIM_LOCAL_BIN to test another build instead, and
# SCIM2_TESTER_PROFILES (space-separated) to test fewer profiles. Each server gets a free loopback port,
# its own temporary data directory and a random token, and is stopped when its run ends.
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

profiles="${SCIM2_TESTER_PROFILES:-default $(ls shared/profiles | sed -n 's/\.json$//p' | grep -vx default | xargs)}"

work="$(mktemp -d)"
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap 'stop_server; rm -rf "$work"' EXIT

# Reads scim2 test's report on stdin; prints what was counted; exits 1 if any check did not succeed
# (other than the tester error described at the top), or if none ran.
tester_verdict() {
  "$venv_python" -c '
import ast, re, sys
lines = sys.stdin.read().splitlines()
statuses = ("SUCCESS", "COMPLIANT", "ACCEPTABLE", "DEVIATION", "ERROR", "CRITICAL", "SKIPPED")
checks = []  # (status, title, detail lines)
for line in lines:
    head = line.split(" ", 1)
    if len(head) == 2 and head[0] in statuses and not line.startswith(" "):
        checks.append((head[0], head[1], []))
    elif checks:
        checks[-1][2].append(line)
append_error = re.compile(r"\s*PATCH modify\(\) returned unexpected value for \x27([^\x27]+)\x27\.\nPatched value: (.*)\nReturned value: (.*)")
def rfc_append(title, detail):
    """The tester error RFC 7644 §3.5.2.1 contradicts: the values added were appended to earlier ones."""
    m = append_error.fullmatch("\n".join(detail).rstrip())
    if title != "check_add_attribute" or not m:
        return None
    try:
        added, held = ast.literal_eval(m.group(2)), ast.literal_eval(m.group(3))
    except (ValueError, SyntaxError):
        return None
    ok = isinstance(added, list) and isinstance(held, list) and len(added) > 0 and len(held) > len(added) and held[-len(added):] == added
    return m.group(1) if ok else None
passed = sum(1 for s, _, _ in checks if s == "SUCCESS")
failed, tolerated = [], []
for status, title, detail in checks:
    if status == "SUCCESS":
        continue
    path = rfc_append(title, detail) if status == "ERROR" else None
    (tolerated if path else failed).append(path or "\n".join([f"{status} {title}"] + detail))
for path in tolerated:
    print(f"  not counted: PATCH add to {path} appended to the values it held (RFC 7644 §3.5.2.1); scim2-tester expects it to replace them")
for f in failed:
    print(f)
print(f"{passed} checks passed, {len(tolerated)} tester errors not counted, {len(failed)} failed")
sys.exit(1 if failed or passed == 0 else 0)
'
}

run_profile() {
  local profile=$1 port token base start status=0
  # A free loopback port: bind port 0, read the port the system chose, release it.
  port="$("$venv_python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  token="$("$venv_python" -c 'import secrets; print(secrets.token_hex(32))')"
  rm -rf "$work/data"
  SCIM_LISTEN="127.0.0.1:$port" SCIM_DATA_DIR="$work/data" SCIM_BEARER_TOKEN="$token" SCIM_BASE_PATH=/scim/v2 \
    SCIM_PROFILE="$profile" "$bin" >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    if grep -q "SCIM server ready" "$work/server.log" 2>/dev/null || ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if ! grep -q "SCIM server ready" "$work/server.log"; then
    echo "tests/scim2_tester.sh: scim-local (profile $profile) did not start:" >&2
    grep -v "Secret Token\|Try:" "$work/server.log" >&2 || true
    return 1
  fi
  base="http://127.0.0.1:$port/scim/v2"
  start=$(date +%s)
  # The token goes through the environment, not the command line (other users can read argument lists).
  SCIM_CLI_HEADERS="Authorization: Bearer $token" .venv/bin/scim2 --url "$base" test >"$work/report.txt" 2>&1 || status=$?
  stop_server
  if tester_verdict <"$work/report.txt" >"$work/verdict.txt"; then
    sed '$d' "$work/verdict.txt"
    echo "tests/scim2_tester.sh: profile $profile: $(tail -1 "$work/verdict.txt") in $(( $(date +%s) - start )) s"
  else
    cat "$work/report.txt" "$work/verdict.txt"  # every check with its reason, then what failed
    echo "tests/scim2_tester.sh: profile $profile: FAILED: $(tail -1 "$work/verdict.txt") (scim2 test exit status $status)" >&2
    return 1
  fi
}

echo "tests/scim2_tester.sh: scim2-tester $("$venv_python" -c 'import importlib.metadata as m; print(m.version("scim2-tester"))') against $bin, profiles: $profiles"
result=0
for profile in $profiles; do
  run_profile "$profile" || result=1
done
exit $result
