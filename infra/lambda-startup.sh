#!/usr/bin/env bash
# Lambda start-up of the functions, measured on this machine without AWS: each function's host build runs
# under infra/lambda_runtime.py (a Runtime API emulator on loopback) against scim-local's embedded DynamoDB
# engine on loopback. See --help.
set -euo pipefail

usage() {
  cat <<'EOF'
lambda-startup.sh: cold-start and first-request latency of the Lambda functions, measured locally.

USAGE: infra/lambda-startup.sh [--runs N] [--warm N] [--no-build] [--debug] [--json FILE] [--keep] [FUNCTION...]

Builds the functions, then scim-local, for this host (cargo build --release, honouring CARGO_TARGET_DIR),
starts scim-local's embedded DynamoDB engine on 127.0.0.1 (fresh data directory, table scim), then starts
each function N times as a fresh process under infra/lambda_runtime.py, which serves the Lambda Runtime
API on 127.0.0.1 and measures
  init           spawn of the process -> its first GET /runtime/invocation/next (logging, configuration,
                 SDK client, token, DynamoDB warm-up), and beside it the function's own "initialised"
                 init_ms log field (the part inside scim_core::bootstrap::lambda_state)
  first request  the first (cold) invocation: event handed out -> response received
  same, warm     the same request later in the run (when --warm reaches it), for the cold penalty
  warm           all the following invocations (median over all runs; each scenario mixes requests)
Every response's statusCode is checked. Runs go round-robin over the functions, so background load
spreads evenly. Prints min / median / max per function and the size of each host binary (and of the
arm64 zip when infra/build-lambda.sh has made one). Exits non-zero on any failure. Loopback only.

Not measured: Lambda's own share of a cold start (code download, microVM and sandbox start), arm64, the
real DynamoDB (TLS, network) and SSM (the token comes from SCIM_BEARER_TOKEN here, not SSM). On a busy
machine run it under `nice` knowing the numbers include scheduling delays.

FUNCTIONS   users groups discovery bulk (default: these four HTTP functions; the token function needs
            OAuth signing keys and the events function a stream event, neither of which this script sets up)

OPTIONS
  --runs N    cold starts per function (default 5)
  --warm N    warm invocations after the first in each run (default 5)
  --no-build  use the binaries already built
  --debug     use (and build) the debug binaries instead of release, for trying the script quickly
  --json FILE write the summary and every run's measurements as JSON
  --keep      keep the temporary directory (engine data, each run's JSON and the functions' logs)
  -h, --help  this text

ENVIRONMENT
  CARGO_TARGET_DIR   where cargo builds (default: the workspace's target directory)
  RUST_LOG           passed to the functions when set (e.g. debug: the log lines, each with its arrival
                     time, are in the kept per-run JSON files)
EOF
}

runs=5
warm=5
build=1
profile=release
json_out=""
keep=0
functions=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="${2:-}"; shift 2 || { echo "lambda-startup.sh: --runs needs a value" >&2; exit 2; } ;;
    --runs=*) runs="${1#*=}"; shift ;;
    --warm) warm="${2:-}"; shift 2 || { echo "lambda-startup.sh: --warm needs a value" >&2; exit 2; } ;;
    --warm=*) warm="${1#*=}"; shift ;;
    --no-build) build=0; shift ;;
    --debug) profile=debug; shift ;;
    --json) json_out="${2:-}"; shift 2 || { echo "lambda-startup.sh: --json needs a file" >&2; exit 2; } ;;
    --json=*) json_out="${1#*=}"; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "lambda-startup.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    users|groups|discovery|bulk) [[ " ${functions[*]} " == *" $1 "* ]] || functions+=("$1"); shift ;;
    *) echo "lambda-startup.sh: unknown function $1 (users, groups, discovery, bulk)" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "lambda-startup.sh: --runs must be a positive integer" >&2; exit 2; }
[[ "$warm" =~ ^[0-9]+$ ]] || { echo "lambda-startup.sh: --warm must be a non-negative integer" >&2; exit 2; }
[[ ${#functions[@]} -gt 0 ]] || functions=(users groups discovery bulk)
if [[ -n "$json_out" ]]; then
  [[ -d "$(dirname "$json_out")" ]] || { echo "lambda-startup.sh: --json: no directory $(dirname "$json_out")" >&2; exit 2; }
  json_out="$(cd "$(dirname "$json_out")" && pwd)/$(basename "$json_out")"
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
emulator="$root/infra/lambda_runtime.py"
command -v python3 >/dev/null || { echo "lambda-startup.sh: needs python3" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------
# Build

# Two cargo invocations, not one: cargo unifies dependency features over every package of a build, and
# scim-local's (tokio "full", axum "tracing", tower-http "cors"/"trace", uuid v5/v7, ...) would otherwise
# end up in the function binaries, which infra/build-lambda.sh builds without scim-local.
build() {
  local flags=()
  [[ $profile == release ]] && flags=(--release)
  echo "+ cargo build ${flags[*]:+${flags[*]} }$*" >&2
  cargo build ${flags[@]+"${flags[@]}"} "$@"
}
if [[ $build -eq 1 ]]; then
  packages=()
  for f in "${functions[@]}"; do packages+=(-p "$f"); done
  build "${packages[@]}"
  build -p scim-local
fi
target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null)" \
  || target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin_dir="$target_dir/$profile"
for b in scim-local "${functions[@]}"; do
  [[ -x "$bin_dir/$b" ]] || { echo "lambda-startup.sh: $bin_dir/$b is missing; build it (drop --no-build)" >&2; exit 1; }
done

# ---------------------------------------------------------------------------------------------------
# Clean-up: every process started here, and the temporary directory

tmp="$(mktemp -d "${TMPDIR:-/tmp}/lambda-startup.XXXXXX")"
engine_pid=""
emulator_pid=""
stop() {
  local pid="$1" i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop "$emulator_pid"
  stop "$engine_pid"
  if [[ $keep -eq 1 ]]; then echo "lambda-startup.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# ---------------------------------------------------------------------------------------------------
# The DynamoDB API: scim-local's embedded engine, on a fresh data directory, in a clean environment

token="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"  # 32 characters
export SCIM_BEARER_TOKEN="$token"  # handed to the functions by name (-e), never on a command line
mkdir -p "$tmp/data"
env -i PATH="$PATH" RUST_LOG=warn SCIM_DATA_DIR="$tmp/data" SCIM_LISTEN=127.0.0.1:0 SCIM_TABLE=scim SCIM_BEARER_TOKEN="$token" \
  "$bin_dir/scim-local" >"$tmp/scim-local.log" 2>&1 &
engine_pid=$!
for _ in $(seq 600); do
  grep -q '^SCIM server ready' "$tmp/scim-local.log" 2>/dev/null && break
  kill -0 "$engine_pid" 2>/dev/null || { echo "lambda-startup.sh: scim-local exited:" >&2; cat "$tmp/scim-local.log" >&2; exit 1; }
  sleep 0.1
done
grep -q '^SCIM server ready' "$tmp/scim-local.log" || { echo "lambda-startup.sh: scim-local not ready after 60 s:" >&2; cat "$tmp/scim-local.log" >&2; exit 1; }
endpoint="$(cat "$tmp/data/endpoint")"
[[ "$endpoint" =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || { echo "lambda-startup.sh: unexpected engine endpoint '$endpoint'" >&2; exit 1; }

echo "Lambda start-up: $profile build in $bin_dir, $runs cold starts x (1 + $warm invocations) per function"
echo "  host $(uname -m), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo ?), nice $(nice)"
echo "  DynamoDB API: scim-local's embedded engine (dynoxide) at $endpoint, table scim"

# ---------------------------------------------------------------------------------------------------
# The runs, round-robin over the functions

for ((i = 1; i <= runs; i++)); do
  for f in "${functions[@]}"; do
    out="$tmp/$f-$i"
    python3 "$emulator" --scenario "$f" --warm "$warm" --quiet --json "$out.json" --log "$out.log" \
      -e SCIM_BEARER_TOKEN -e SCIM_DYNAMODB_ENDPOINT="$endpoint" -e SCIM_TABLE=scim -e AWS_REGION=us-east-1 \
      -e AWS_ACCESS_KEY_ID=local -e AWS_SECRET_ACCESS_KEY=local -e AWS_LAMBDA_FUNCTION_NAME="$f" \
      ${RUST_LOG:+-e RUST_LOG} "$bin_dir/$f" >"$out.out" 2>&1 &
    emulator_pid=$!
    if wait "$emulator_pid"; then rc=0; else rc=$?; fi
    emulator_pid=""
    if [[ $rc -ne 0 ]]; then
      echo "lambda-startup.sh: $f, run $i/$runs failed (exit $rc):" >&2
      cat "$out.out" >&2
      exit 1
    fi
    printf '  run %d/%d  %s\n' "$i" "$runs" "$(cat "$out.out")"
  done
done

# ---------------------------------------------------------------------------------------------------
# Summary

python3 - "$tmp" "$target_dir" "$profile" "$runs" "$warm" "$json_out" "${functions[@]}" <<'PY'
import json, os, statistics, sys

tmp, target_dir, profile, runs, warm, json_out, functions = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7:]

def mmm(xs):
    xs = [x for x in xs if x is not None]
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs)} if xs else None

def show(s):
    return "-" if s is None else f"{s['min']:.1f} / {s['median']:.1f} / {s['max']:.1f}"

def size(path):
    return os.path.getsize(path) if os.path.exists(path) else None

summary = {"profile": profile, "runs": runs, "warm": warm, "functions": {}}
print()
print(f"{'':10} {'host binary':>11} {'arm64 zip':>9}  {'init ms':^22} {'own init_ms':^22} {'first request ms':^22} {'same, warm':>10} {'all warm':>8}")
print(f"{'function':10} {'MiB':>11} {'MiB':>9}  {'min / median / max':^22} {'min / median / max':^22} {'min / median / max':^22} {'median':>10} {'median':>8}")
for f in functions:
    rs = [json.load(open(os.path.join(tmp, f"{f}-{i}.json"))) for i in range(1, runs + 1)]
    binary, zip_ = size(os.path.join(target_dir, profile, f)), size(os.path.join(target_dir, "lambda", f, "bootstrap.zip"))
    s = {
        "binary_bytes": binary, "arm64_zip_bytes": zip_,
        "init_ms": mmm([r["init_ms"] for r in rs]),
        "reported_init_ms": mmm([r["reported_init_ms"] for r in rs]),
        "first_ms": mmm([r["first_ms"] for r in rs]),
        "first_request_warm_ms": mmm([i["ms"] for r in rs for i in r["invocations"] if i["step"] == 0 and not i["cold"]]),
        "warm_ms": mmm([w for r in rs for w in r["warm_ms"]]),
        "runs": [{k: r[k] for k in ("init_ms", "reported_init_ms", "first_ms", "warm_ms", "invocations")} for r in rs],
    }
    summary["functions"][f] = s
    mib = lambda b: "-" if b is None else f"{b / 1048576:.1f}"
    med = lambda m: "-" if m is None else f"{m['median']:.1f}"
    print(f"{f:10} {mib(binary):>11} {mib(zip_):>9}  {show(s['init_ms']):^22} {show(s['reported_init_ms']):^22} {show(s['first_ms']):^22} "
          f"{med(s['first_request_warm_ms']):>10} {med(s['warm_ms']):>8}")
print()
print("init: process spawn -> first GET /runtime/invocation/next; own init_ms: the function's 'initialised' log field")
print("(configuration, SDK client, token, DynamoDB warm-up); first request: the cold invocation, event -> response;")
print("same, warm: that request again later in the run; all warm: every later invocation (the scenario's requests mixed).")
if profile != "release":
    print(f"NOTE: {profile} build; only release numbers say anything about Lambda.")
if json_out:
    with open(json_out, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
        fh.write("\n")
    print(f"written: {json_out}")
PY
