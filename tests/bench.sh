#!/usr/bin/env bash
# Benchmark: the same Entra-shaped workload against our local server (scim-local, on its embedded DynamoDB
# engine) and against python-scim's scim2-server (PyPI, in-memory), one after the other on this machine,
# then the ratios. See docs/benchmark.md.
#
#   tests/bench.sh                 default comparison (≈ 2 min of load, plus the release build: ≈ 5–10 min cold)
#   tests/bench.sh --scale         our server at 100,000 users (≈ 2 min on 2 cores, plus the build; see docs),
#                                  including a full walk by startIndex and one by cursor
#   tests/bench.sh --walk          our server: load SCALE_USERS users, then only the two full walks
#   tests/bench.sh --no-build ...  reuse the release binaries already built
#   tests/bench.sh -- --users 200  anything after `--` goes to scim-bench (both runs)
#
# Environment: CARGO_TARGET_DIR (where the release binaries are built), BENCH_OUT (where the JSON reports
# and server logs go; default a new temporary directory), SCALE_USERS (default 100000), BENCH_BUILD_NICE
# (niceness of the build only, default 0). Installs scim2-server into .venv-bench on first use.
# Only loopback addresses are used; both servers are stopped on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

SCALE=0
SCENARIO=scale
BUILD=1
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) SCALE=1 ;;
    --walk) SCALE=1; SCENARIO=walk ;;
    --no-build) BUILD=0 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${BENCH_OUT:-$(mktemp -d -t scim-bench.XXXXXX)}"
mkdir -p "$OUT"
SCIM2_VERSION="0.8.3"

if [ "$BUILD" = 1 ]; then
  echo "bench.sh: building release binaries into $TARGET"
  CARGO_TARGET_DIR="$TARGET" nice -n "${BENCH_BUILD_NICE:-0}" \
    cargo build --release --quiet -p scim-local -p scim-tests --bin scim-local --bin scim-bench
fi
LOCAL_BIN="$TARGET/release/scim-local"
BENCH_BIN="$TARGET/release/scim-bench"
[ -x "$LOCAL_BIN" ] && [ -x "$BENCH_BIN" ] || { echo "bench.sh: $LOCAL_BIN or $BENCH_BIN missing (run without --no-build)" >&2; exit 1; }

PIDS=()
TMP_DATA=""
cleanup() {
  for p in ${PIDS[@]+"${PIDS[@]}"}; do
    kill "$p" 2>/dev/null || true
  done
  for p in ${PIDS[@]+"${PIDS[@]}"}; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  [ -n "$TMP_DATA" ] && rm -rf "$TMP_DATA"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Wait until URL answers 200 with the bearer token (at most 60 s).
wait_ready() {
  local url="$1" token="$2" pid="$3"
  for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || { echo "bench.sh: server $pid exited; see $OUT" >&2; return 1; }
    if curl -fsS -o /dev/null -H "Authorization: Bearer $token" "$url/ServiceProviderConfig" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "bench.sh: $url did not answer within 60 s" >&2
  return 1
}

# Our server, on a fresh data directory. Sets OURS_URL, OURS_TOKEN, OURS_PID, OURS_ENGINE.
start_ours() {
  TMP_DATA="$(mktemp -d -t scim-bench-data.XXXXXX)"
  local port; port="$(free_port)"
  SCIM_DATA_DIR="$TMP_DATA" SCIM_LISTEN="127.0.0.1:$port" SCIM_EXPOSE_CALL_COUNT=1 \
    "$LOCAL_BIN" >"$OUT/scim-local.log" 2>&1 &
  OURS_PID=$!
  PIDS+=("$OURS_PID")
  for _ in $(seq 300); do [ -s "$TMP_DATA/token" ] && [ -s "$TMP_DATA/endpoint" ] && break; sleep 0.1; done
  OURS_TOKEN="$(tr -d '[:space:]' <"$TMP_DATA/token")"
  OURS_ENGINE="$(tr -d '[:space:]' <"$TMP_DATA/endpoint")"
  OURS_URL="http://127.0.0.1:$port/scim/v2"
  wait_ready "$OURS_URL" "$OURS_TOKEN" "$OURS_PID"
  echo "bench.sh: scim-local (pid $OURS_PID) at $OURS_URL, engine at $OURS_ENGINE, data in $TMP_DATA"
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}

# python-scim's scim2-server, in memory, with a bearer token (so both servers check one). Sets THEIRS_*.
start_theirs() {
  if ! "$ROOT/.venv-bench/bin/python" -c "import scim2_server" >/dev/null 2>&1; then
    echo "bench.sh: installing scim2-server $SCIM2_VERSION into .venv-bench"
    python3 -m venv "$ROOT/.venv-bench"
    "$ROOT/.venv-bench/bin/pip" install --quiet --disable-pip-version-check "scim2-server==$SCIM2_VERSION"
  fi
  local port; port="$(free_port)"
  THEIRS_TOKEN="bench-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  "$ROOT/.venv-bench/bin/scim2-server" --hostname 127.0.0.1 --port "$port" --bearer-token "$THEIRS_TOKEN" \
    >"$OUT/scim2-server.log" 2>&1 &
  THEIRS_PID=$!
  PIDS+=("$THEIRS_PID")
  THEIRS_URL="http://127.0.0.1:$port/v2"
  wait_ready "$THEIRS_URL" "$THEIRS_TOKEN" "$THEIRS_PID"
  echo "bench.sh: scim2-server $SCIM2_VERSION (pid $THEIRS_PID) at $THEIRS_URL"
}

echo "bench.sh: $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%Y-%m-%dT%H:%MZ); reports in $OUT"
echo "bench.sh: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$SCALE" = 1 ]; then
  start_ours
  started=$(date +%s)
  "$BENCH_BIN" --scenario "$SCENARIO" --label "scim-local (ours)" --base-url "$OURS_URL" --token "$OURS_TOKEN" \
    --users "${SCALE_USERS:-100000}" --ceiling "$OURS_ENGINE" --ceiling-data-dir "$TMP_DATA" --server-pid "$OURS_PID" \
    --json "$OUT/$SCENARIO.json" ${EXTRA[@]+"${EXTRA[@]}"}
  echo "bench.sh: $SCENARIO run took $(( $(date +%s) - started )) s; peak RSS of scim-local: $(grep VmHWM /proc/"$OURS_PID"/status | tr -s ' \t' ' ')"
  stop_pid "$OURS_PID"
  exit 0
fi

start_ours
"$BENCH_BIN" --label "scim-local (ours)" --base-url "$OURS_URL" --token "$OURS_TOKEN" \
  --ceiling "$OURS_ENGINE" --ceiling-data-dir "$TMP_DATA" --server-pid "$OURS_PID" --json "$OUT/ours.json" ${EXTRA[@]+"${EXTRA[@]}"}
stop_pid "$OURS_PID"

start_theirs
"$BENCH_BIN" --label "scim2-server $SCIM2_VERSION" --base-url "$THEIRS_URL" --token "$THEIRS_TOKEN" \
  --server-pid "$THEIRS_PID" --json "$OUT/theirs.json" ${EXTRA[@]+"${EXTRA[@]}"}
stop_pid "$THEIRS_PID"

"$BENCH_BIN" compare "$OUT/ours.json" "$OUT/theirs.json"
echo "bench.sh: JSON reports and server logs in $OUT"
