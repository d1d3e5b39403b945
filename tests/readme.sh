#!/usr/bin/env bash
# Runs the README's set-up commands exactly as written, so they can never break silently:
#   tests/readme.sh test   the README's test command (the whole suite)
#   tests/readme.sh run    in a fresh clone of this checkout: the README's run command, then the README's Test
#                          Connection request (curl) against it; passes when that answers 200 with an empty list.
#   tests/readme.sh watch  in a fresh clone: the README's run command (listening on a free port: the handlers
#                          need only its engine), then the README's `cargo lambda watch` line (on a free invoke
#                          port instead of 9000), then the README's Test Connection request through the watch
#                          URL, then the same request with Entra's raw quotes as API Gateway delivers it (an
#                          HTTP API event through the watch's invoke API); passes when both answer 200 with an
#                          empty list. Installs cargo-lambda into .venv-lambda on first use; the first request
#                          compiles the function.
# The commands are read from the README's ```sh blocks (first line of each), not copied here. In every mode the
# token is printed at most once (by the server, at its first start), never by the handlers.
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
watch_cmd=$(block_after "Run the Lambda handlers locally")
watch_curl_cmd=$(block_after "Test Connection through the watch URL")
for v in run_cmd test_cmd curl_cmd watch_cmd watch_curl_cmd; do
  [ -n "${!v}" ] || { echo "tests/readme.sh: could not find the README's $v" >&2; exit 1; }
done

case "${1:-}" in
  test)
    echo "tests/readme.sh: README test command: $test_cmd"
    bash -c "$test_cmd"
    ;;
  run|watch)
    mode=$1
    echo "tests/readme.sh: README run command: $run_cmd"
    work=$(mktemp -d)
    server=""
    watcher=""
    stop() { # a process group started below, politely first
      kill -TERM -- "-$1" 2>/dev/null || return 0
      for _ in $(seq 1 50); do kill -0 -- "-$1" 2>/dev/null || break; sleep 0.2; done
      kill -KILL -- "-$1" 2>/dev/null || true
      wait "$1" 2>/dev/null || true
    }
    cleanup() {
      if [ -n "$watcher" ]; then stop "$watcher"; fi
      if [ -n "$server" ]; then stop "$server"; fi
      rm -rf "$work"
    }
    trap cleanup EXIT
    free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
    git clone --quiet "$repo" "$work/clone"
    cd "$work/clone"
    # Share compiled dependencies with the checkout's own target directory (a fresh clone builds the same crates).
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
    if [ "$mode" = watch ]; then
      export SCIM_LISTEN="127.0.0.1:$(free_port)"
    fi
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
    request=$curl_cmd
    if [ "$mode" = watch ]; then
      if ! [ -x "$repo/.venv-lambda/bin/cargo-lambda" ]; then
        echo "tests/readme.sh: installing cargo-lambda into .venv-lambda"
        python3 -m venv "$repo/.venv-lambda"
        "$repo/.venv-lambda/bin/pip" install --quiet --disable-pip-version-check cargo-lambda ziglang
      fi
      export PATH="$repo/.venv-lambda/bin:$PATH"
      port=$(free_port)
      echo "tests/readme.sh: server ready; README watch command: $watch_cmd (invoke port $port)"
      set -m
      bash -c "$watch_cmd --invoke-port $port" > "$work/watch.log" 2>&1 &
      watcher=$!
      set +m
      request=$(printf '%s' "$watch_curl_cmd" | sed "s#127.0.0.1:9000/#127.0.0.1:$port/#")
      # The first request compiles the function: allow it time.
      request="$request --max-time 1800"
      for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        kill -0 "$watcher" 2>/dev/null || { echo "tests/readme.sh: cargo lambda watch exited:" >&2; tail -n 30 "$work/watch.log" >&2; exit 1; }
        sleep 0.2
      done
    fi
    echo "tests/readme.sh: README Test Connection request: $request"
    out=$(bash -c "$request -sS -w '\n%{http_code}'") || { echo "tests/readme.sh: the request failed" >&2; tail -n 40 "$work"/*.log >&2; exit 1; }
    code=$(printf '%s' "$out" | tail -n 1)
    body=$(printf '%s' "$out" | sed '$d')
    echo "tests/readme.sh: HTTP $code $body"
    [ "$code" = 200 ] || { echo "tests/readme.sh: Test Connection did not answer 200" >&2; tail -n 40 "$work"/*.log >&2; exit 1; }
    printf '%s' "$body" | grep -q '"totalResults":0' || { echo "tests/readme.sh: Test Connection did not answer an empty list" >&2; exit 1; }
    printf '%s' "$body" | grep -q 'urn:ietf:params:scim:api:messages:2.0:ListResponse' || { echo "tests/readme.sh: not a ListResponse" >&2; exit 1; }
    # A generated token is printed once, and never echoed again (nor a configured one); the handlers never print it.
    token=$(cat .scim-data/token)
    n=$(grep -o "$token" "$work/server.log" | wc -l)
    [ "$n" -le 1 ] || { echo "tests/readme.sh: the server printed its token $n times" >&2; exit 1; }
    if [ "$mode" = watch ]; then
      # Entra's request line with its raw quotes, as API Gateway hands it to the function (an HTTP API event,
      # rawQueryString untouched; cargo lambda watch's own HTTP server refuses raw quotes in a URL), through
      # the watch's invoke API: same handler, same answer.
      guid=$(python3 -c 'import uuid; print(uuid.uuid4())')
      umask 077
      TOKEN_FILE=.scim-data/token GUID="$guid" python3 - "$repo/tests/fixtures/apigw-v2/users-get-filter-raw-quotes.json" > "$work/event.json" <<'PY'
import json, os, sys
event = json.load(open(sys.argv[1]))
event["rawQueryString"] = 'filter=userName+eq+"%s"' % os.environ["GUID"]
event["headers"]["authorization"] = "Bearer " + open(os.environ["TOKEN_FILE"]).read().strip()
json.dump(event, sys.stdout)
PY
      echo "tests/readme.sh: the same request with raw quotes as an API Gateway event: rawQueryString $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rawQueryString"])' "$work/event.json")"
      answer=$(curl -sS --max-time 600 --data-binary @"$work/event.json" "http://127.0.0.1:$port/2015-03-31/functions/users/invocations")
      printf '%s' "$answer" | python3 -c '
import json, sys
a = json.load(sys.stdin)
body = json.loads(a["body"])
print("tests/readme.sh: statusCode %s %s" % (a["statusCode"], a["body"]))
assert a["statusCode"] == 200, "not 200"
assert body["totalResults"] == 0 and body["Resources"] == [], "not an empty list"
' || { echo "tests/readme.sh: the raw-quoted event did not answer 200 with an empty list" >&2; exit 1; }
      ! grep -q "$token" "$work/watch.log" || { echo "tests/readme.sh: cargo lambda watch printed the token" >&2; exit 1; }
      ! grep -q "$(cat .scim-data/engine-key)" "$work/watch.log" "$work/server.log" || { echo "tests/readme.sh: the engine key was printed" >&2; exit 1; }
      echo "tests/readme.sh: the README's cargo lambda watch line works"
    else
      echo "tests/readme.sh: the README's run command works"
    fi
    ;;
  *)
    echo "usage: tests/readme.sh test|run|watch" >&2
    exit 2
    ;;
esac
