#!/usr/bin/env bash
# Runs the README's set-up commands exactly as written, so they can never break silently:
#   tests/readme.sh test   the README's test command (the whole suite)
#   tests/readme.sh run    in a fresh clone of this checkout: the README's run command, then the README's Test
#                          Connection request (curl) against it; passes when that answers 200 with an empty list.
# The commands are read from the README's ```sh blocks (first line of each), not copied here.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

# The first command line of the first ```sh block after the line matching $1.
block_after() {
  awk -v pat="$1" '
    index($0, pat) { found = 1; next }
    found && /^```sh/ { inblock = 1; next }
    inblock && /^```/ { exit }
    inblock { line = line $0 "\n" }
    END { printf "%s", line }
  ' README.md | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | head -n 1
}

run_cmd=$(block_after "Run the server locally")
test_cmd=$(block_after "Run the whole test suite")
curl_cmd=$(block_after "Try Entra's Test Connection")
for v in run_cmd test_cmd curl_cmd; do
  [ -n "${!v}" ] || { echo "tests/readme.sh: could not find the README's $v" >&2; exit 1; }
done

case "${1:-}" in
  test)
    echo "tests/readme.sh: README test command: $test_cmd"
    bash -c "$test_cmd"
    ;;
  run)
    echo "tests/readme.sh: README run command: $run_cmd"
    work=$(mktemp -d)
    server=""
    cleanup() {
      if [ -n "$server" ]; then kill -- "-$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
      rm -rf "$work"
    }
    trap cleanup EXIT
    git clone --quiet "$repo" "$work/clone"
    cd "$work/clone"
    # Share compiled dependencies with the checkout's own target directory (a fresh clone builds the same crates).
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
    set -m
    bash -c "$run_cmd" > "$work/server.log" 2>&1 &
    server=$!
    set +m
    # The first run compiles a release build: allow it time.
    for _ in $(seq 1 1800); do
      grep -q "SCIM server ready" "$work/server.log" && break
      if ! kill -0 "$server" 2>/dev/null; then
        echo "tests/readme.sh: the run command exited before the server was ready:" >&2
        tail -n 30 "$work/server.log" >&2
        exit 1
      fi
      sleep 1
    done
    grep -q "SCIM server ready" "$work/server.log" || { echo "tests/readme.sh: no server after 30 minutes" >&2; tail -n 30 "$work/server.log" >&2; exit 1; }
    echo "tests/readme.sh: server ready; README Test Connection request: $curl_cmd"
    out=$(bash -c "$curl_cmd -sS -w '\n%{http_code}'")
    code=$(printf '%s' "$out" | tail -n 1)
    body=$(printf '%s' "$out" | sed '$d')
    echo "tests/readme.sh: HTTP $code $body"
    [ "$code" = 200 ] || { echo "tests/readme.sh: Test Connection did not answer 200" >&2; exit 1; }
    printf '%s' "$body" | grep -q '"totalResults":0' || { echo "tests/readme.sh: Test Connection did not answer an empty list" >&2; exit 1; }
    # A generated token is printed once, and never echoed again (nor a configured one).
    token=$(cat .scim-data/token)
    n=$(grep -o "$token" "$work/server.log" | wc -l)
    [ "$n" -le 1 ] || { echo "tests/readme.sh: the server printed its token $n times" >&2; exit 1; }
    echo "tests/readme.sh: the README's run command works"
    ;;
  *)
    echo "usage: tests/readme.sh test|run" >&2
    exit 2
    ;;
esac
