#!/usr/bin/env bash
# Benchmark (not part of CI): many tenants on one release scim-local, over HTTP. See docs/benchmark.md
# ("Many tenants").
#
#   tests/bench-tenants.sh                 10,000 tenants (≈ 10 min plus the release build)
#   tests/bench-tenants.sh --no-build      reuse the release scim-local already built
#
# Creates TENANTS tenants (default 10000) through the management API (/manage/v1, the admin token), issues
# each a token and sends it SCIM traffic (a create, Entra's match query, a GET that is not found: one
# failure kind). Records, at 0, 1,000, the metrics bound and TENANTS tenants: scim-local's RSS, the
# operator page's overview (HTML and JSON) and the management API's tenant list (page 1 and a late page)
# latency (median of 20, ms), and the CPU scim-local uses idle over IDLE_SECONDS (default 60).
#
# Environment: CARGO_TARGET_DIR, BENCH_OUT (report and log; default a new temporary directory), TENANTS,
# IDLE_SECONDS, SCIM_METRICS_MAX_TENANTS (the metrics bound; default 1693, scim-local's own default, which
# the run crosses), BENCH_BUILD_NICE (default 10). Only loopback; scim-local is stopped on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench-tenants.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${BENCH_OUT:-$(mktemp -d -t scim-bench-tenants.XXXXXX)}"
mkdir -p "$OUT"
TENANTS="${TENANTS:-10000}"
IDLE_SECONDS="${IDLE_SECONDS:-60}"
BOUND="${SCIM_METRICS_MAX_TENANTS:-1693}"

if [ "$BUILD" = 1 ]; then
  echo "bench-tenants.sh: building the release scim-local into $TARGET"
  CARGO_TARGET_DIR="$TARGET" nice -n "${BENCH_BUILD_NICE:-10}" \
    cargo build --release --quiet -p scim-local --bin scim-local
fi
BIN="$TARGET/release/scim-local"
[ -x "$BIN" ] || { echo "bench-tenants.sh: $BIN missing (run without --no-build)" >&2; exit 1; }

PID=""
DATA="$(mktemp -d -t scim-bench-tenants-data.XXXXXX)"
cleanup() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
  fi
  rm -rf "$DATA"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
SCIM_DATA_DIR="$DATA" SCIM_LISTEN="127.0.0.1:$port" SCIM_METRICS_MAX_TENANTS="$BOUND" RUST_LOG=warn \
  "$BIN" >"$OUT/scim-local.log" 2>&1 &
PID=$!
for _ in $(seq 600); do [ -s "$DATA/admin-token" ] && break; sleep 0.1; done
ADMIN="$(tr -d '[:space:]' <"$DATA/admin-token")"
for _ in $(seq 600); do
  curl -fsS -o /dev/null -H "Authorization: Bearer $ADMIN" "http://127.0.0.1:$port/manage/v1/tenants?limit=1" 2>/dev/null && break
  sleep 0.1
done
echo "bench-tenants.sh: scim-local (pid $PID) at 127.0.0.1:$port; report in $OUT/report.json"

python3 - "$port" "$ADMIN" "$PID" "$TENANTS" "$BOUND" "$IDLE_SECONDS" "$OUT/report.json" <<'PY'
import http.client, json, os, statistics, sys, threading, time

port, admin, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
total, bound, idle, report_path = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
tick = os.sysconf("SC_CLK_TCK")

def rss_mib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)

def cpu_seconds():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick  # utime + stime

class Client:
    def __init__(self):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    def call(self, method, path, token, body=None, scim=False):
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/scim+json" if scim else "application/json"
        for attempt in range(3):
            try:
                self.c.request(method, path, body=data, headers=headers)
                r = self.c.getresponse()
                text = r.read()
                return r.status, text
            except (http.client.HTTPException, OSError):
                self.c.close()
                self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        raise RuntimeError(f"{method} {path}: no answer")

def make(first, last, workers=8):
    """Tenants t<first>..t<last-1>: created, a token each, then three SCIM requests each."""
    errors = []
    def work(w):
        c = Client()
        for i in range(first + w, last, workers):
            t = f"t{i:05d}"
            s, b = c.call("POST", "/manage/v1/tenants", admin, {"id": t})
            if s != 201:
                errors.append((t, "create", s, b[:200])); continue
            s, b = c.call("POST", f"/manage/v1/tenants/{t}/tokens", admin, {"label": "bench"})
            if s != 201:
                errors.append((t, "token", s, b[:200])); continue
            tok = json.loads(b)["token"]
            base = f"/{t}/scim/v2"
            s, _ = c.call("GET", base + "/Users?filter=" + "userName%20eq%20%22a%40x.example%22", tok)
            s2, _ = c.call("POST", base + "/Users", tok, {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@x.example"}, scim=True)
            s3, _ = c.call("GET", base + "/Users/00000000-0000-4000-8000-000000000000", tok)
            if (s, s2, s3) != (200, 201, 404):
                errors.append((t, "scim", (s, s2, s3)))
    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    started = time.time()
    for th in threads: th.start()
    for th in threads: th.join()
    if errors:
        raise SystemExit(f"{len(errors)} failures, first: {errors[:3]}")
    return time.time() - started

def latency(path, n=20):
    c = Client()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        s, b = c.call("GET", path, admin)
        out.append((time.perf_counter() - t0) * 1000)
        assert s == 200, (path, s, b[:200])
    return round(statistics.median(out), 2), round(max(out), 2), len(b)

def snapshot(n):
    time.sleep(5)  # let the writes' background work (events consumer, metrics) settle
    late = f"t{max(n - 60, 0):05d}"
    row = {
        "tenants": n,
        "rss_mib": rss_mib(),
        "overview_html_ms": latency("/admin"),
        "overview_json_ms": latency("/admin/api/overview"),
        "tenant_list_page1_ms": latency("/manage/v1/tenants?limit=50"),
        "tenant_list_late_page_ms": latency(f"/manage/v1/tenants?limit=50&after={late}"),
    }
    c0, t0 = cpu_seconds(), time.time()
    time.sleep(idle)
    row["idle_cpu_percent"] = round(100 * (cpu_seconds() - c0) / (time.time() - t0), 2)
    row["rss_mib_after_idle"] = rss_mib()
    print(json.dumps(row), flush=True)
    return row

rows = [snapshot(0)]
made, took = 0, {}
for stop in sorted({1000, bound, total}):
    if stop > total or stop <= made:
        continue
    took[stop] = round(make(made, stop), 1)
    print(f"tenants {made}..{stop} made in {took[stop]} s", flush=True)
    made = stop
    rows.append(snapshot(made))
with open(report_path, "w") as f:
    json.dump({"metrics_bound": bound, "rows": rows, "seconds_to_make": took}, f, indent=1)
PY
echo "bench-tenants.sh: done; $OUT/report.json"
