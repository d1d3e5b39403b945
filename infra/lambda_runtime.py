#!/usr/bin/env python3
"""A minimal AWS Lambda Runtime API emulator that measures a function's start-up, on loopback only.

It serves the Runtime API (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html) on
127.0.0.1, starts the function binary itself as a child process with AWS_LAMBDA_RUNTIME_API pointing at
it, hands out API Gateway HTTP API (payload v2) events one by one, and measures:

  init       from spawning the process to its first GET .../invocation/next (process start, logging,
             configuration, SDK client, token, DynamoDB warm-up, runtime client)
  invoke 1   the first (cold) invocation: from handing out the event to receiving its response
  invoke 2+  the same for the following (warm) invocations

Every response's statusCode is checked against the expected one. Prints a short table (or one line with
--quiet), optionally writes JSON (--json), exits non-zero on any failure, and kills the child on exit.
Every wait has a timeout. Python 3.11 standard library only; no AWS, no network beyond loopback.

The child gets a clean, Lambda-like environment (not the caller's): the AWS_LAMBDA_* variables Lambda
sets, AWS_REGION, AWS_EC2_METADATA_DISABLED=true (so a missing credential can never reach for the
instance metadata service), PATH, TZ, plus what -e gives. --inherit-env passes the caller's environment
too.

Scenarios (--scenario) are lists of requests, paths relative to the base path (SCIM_BASE_PATH of the
child, default /scim/v2): users, groups, discovery, bulk, or a JSON file of the same shape:
  [{"method": "GET", "path": "/Users", "query": [["filter", "userName eq \\"x\\""]], "expect": 200},
   {"method": "POST", "path": "/Users", "body": {...}, "expect": 201},
   {"method": "GET", "path": "/Users/{{id}}", "expect": 200}]
Invocation n runs request (n-1) mod len. In paths, query values and bodies, {{uniq}} is a value unique
to each invocation and {{id}} the "id" of the latest response that had one. "expect" is a status or a
list of them; "expect_ops" checks every Operations[].status of a BulkResponse is below 400.

Example:
  SCIM_BEARER_TOKEN=0123456789abcdef0123 python3 infra/lambda_runtime.py --scenario users \\
      -e SCIM_BEARER_TOKEN -e SCIM_DYNAMODB_ENDPOINT=http://127.0.0.1:8000 -e AWS_ACCESS_KEY_ID=local \\
      -e AWS_SECRET_ACCESS_KEY=local target/debug/users
"""

from __future__ import annotations

import argparse
import base64
import copy
import ctypes
import http.server
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

API = "/2018-06-01/runtime"
NEXT = f"{API}/invocation/next"
INVOCATION = re.compile(rf"^{re.escape(API)}/invocation/([^/]+)/(response|error)$")
INIT_ERROR = f"{API}/init/error"
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "apigw-v2", "users-get-filter-encoded.json")

# Used only when the repository's fixture is not there (the emulator copied elsewhere): the same shape.
FALLBACK_TEMPLATE = {
    "version": "2.0",
    "routeKey": "ANY /scim/v2/Users",
    "rawPath": "/scim/v2/Users",
    "rawQueryString": "",
    "headers": {
        "host": "abc123.execute-api.eu-west-1.amazonaws.com",
        "x-forwarded-proto": "https",
        "x-forwarded-for": "20.51.0.1",
        "user-agent": "Microsoft.Identity.Provisioning",
    },
    "requestContext": {
        "accountId": "123456789012",
        "apiId": "abc123",
        "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
        "domainPrefix": "abc123",
        "http": {"method": "GET", "path": "/scim/v2/Users", "protocol": "HTTP/1.1", "sourceIp": "20.51.0.1", "userAgent": "Microsoft.Identity.Provisioning"},
        "requestId": "",
        "routeKey": "ANY /scim/v2/Users",
        "stage": "$default",
        "time": "",
        "timeEpoch": 0,
    },
    "body": None,
    "isBase64Encoded": False,
}

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SCENARIOS = {
    "users": [
        {"method": "GET", "path": "/Users", "query": [["filter", 'userName eq "nobody@example.com"']], "expect": 200},
        {"method": "POST", "path": "/Users", "expect": 201, "body": {
            "schemas": [USER], "userName": "startup-{{uniq}}@example.com", "externalId": "{{uniq}}", "active": True,
            "name": {"givenName": "Start", "familyName": "Up"},
            "emails": [{"primary": True, "type": "work", "value": "startup-{{uniq}}@example.com"}]}},
        {"method": "GET", "path": "/Users/{{id}}", "expect": 200},
    ],
    "groups": [
        {"method": "GET", "path": "/Groups", "query": [["filter", 'displayName eq "x"'], ["excludedAttributes", "members"]], "expect": 200},
        {"method": "POST", "path": "/Groups", "expect": 201, "body": {
            "schemas": [GROUP], "displayName": "startup {{uniq}}", "externalId": "{{uniq}}"}},
        {"method": "GET", "path": "/Groups/{{id}}", "query": [["excludedAttributes", "members"]], "expect": 200},
    ],
    "discovery": [
        {"method": "GET", "path": "/ServiceProviderConfig", "expect": 200},
        {"method": "GET", "path": "/Schemas", "expect": 200},
        {"method": "GET", "path": "/ResourceTypes", "expect": 200},
    ],
    "bulk": [
        {"method": "POST", "path": "/Bulk", "expect": 200, "expect_ops": True, "body": {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"schemas": [USER], "userName": "bulk-{{uniq}}@example.com", "active": True}},
                {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"schemas": [GROUP], "displayName": "bulk {{uniq}}", "members": [{"value": "bulkId:u"}]}},
            ]}},
        {"method": "POST", "path": "/.search", "expect": 200, "body": {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": 'userName eq "nobody@example.com"'}},
        # /Me needs a token bound to a user; the single-tenant token is not: 501 (logged at ERROR, as every 5xx).
        {"method": "GET", "path": "/Me", "expect": 501},
    ],
}


class Failure(Exception):
    pass


class Invocation:
    def __init__(self, n: int, index: int, step: dict, event: dict):
        self.n = n
        self.index = index  # of the step in the scenario
        self.step = step
        self.event = event
        self.request_id = str(uuid.uuid4())
        self.payload = json.dumps(event).encode()
        self.t_sent: float | None = None
        self.t_done: float | None = None
        self.kind: str | None = None  # "response" or "error"
        self.body: bytes = b""


class State:
    def __init__(self, args):
        self.cv = threading.Condition()
        self.pending: Invocation | None = None  # to hand out on the next GET .../next
        self.current: Invocation | None = None  # handed out, no answer yet
        self.t_first_next: float | None = None
        self.init_error: str | None = None
        self.child_exit: int | None = None
        self.closing = False
        self.unexpected: list[str] = []  # protocol errors seen by the server threads
        self.function_arn = ""  # set once the environment is known
        self.timeout_ms = args.function_timeout * 1000
        self.next_wait_limit = args.init_timeout + args.invoke_timeout * 2 + 10


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection is closed after this (the client reconnects)
    server_version = "lambda-runtime-emulator"

    def log_message(self, fmt, *a):  # the requests, with --verbose only
        if self.server.verbose:
            sys.stderr.write(f"  [runtime api] {fmt % a}\n")

    def reply(self, code: int, body: dict | bytes, headers: dict | None = None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        now = time.perf_counter()
        st: State = self.server.state
        if self.path != NEXT:
            return self.reply(404, {"errorType": "NotFound", "errorMessage": f"no GET {self.path}"})
        with st.cv:
            if st.t_first_next is None:
                st.t_first_next = now
                st.cv.notify_all()
            limit = time.monotonic() + st.next_wait_limit
            while st.pending is None and not st.closing and time.monotonic() < limit:
                st.cv.wait(min(1.0, max(0.0, limit - time.monotonic())))
            inv = st.pending
            if inv is None:  # shutting down (Lambda would freeze or kill the instance here): no answer
                self.close_connection = True
                return
            st.pending, st.current = None, inv
        trace = f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"
        headers = {
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + st.timeout_ms),
            "Lambda-Runtime-Invoked-Function-Arn": st.function_arn,
            "Lambda-Runtime-Trace-Id": trace,
        }
        inv.t_sent = time.perf_counter()
        self.reply(200, inv.payload, headers)

    def do_POST(self):
        body = self.read_body()
        now = time.perf_counter()
        st: State = self.server.state
        if self.path == INIT_ERROR:
            with st.cv:
                st.init_error = f"{self.headers.get('Lambda-Runtime-Function-Error-Type') or ''} {body.decode(errors='replace')}".strip()
                st.cv.notify_all()
            return self.reply(202, {"status": "OK"})
        m = INVOCATION.match(self.path)
        if not m:
            return self.reply(404, {"errorType": "NotFound", "errorMessage": f"no POST {self.path}"})
        with st.cv:
            inv = st.current
            if inv is None or inv.request_id != m.group(1):
                st.unexpected.append(f"{m.group(2)} for unknown or finished request id {m.group(1)}")
                st.cv.notify_all()
                return self.reply(400, {"errorType": "InvalidRequestID", "errorMessage": "unknown request id"})
            inv.t_done, inv.kind, inv.body = now, m.group(2), body
            if inv.kind == "error":
                inv.body = f"{self.headers.get('Lambda-Runtime-Function-Error-Type') or ''} {body.decode(errors='replace')}".strip().encode()
            st.current = None
            st.cv.notify_all()
        self.reply(202, {"status": "OK"})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # The function killed (or exiting) while a connection is open is expected at the end of a run.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        with self.state.cv:
            self.state.unexpected.append(f"Runtime API server error: {sys.exc_info()[1]!r}")
            self.state.cv.notify_all()


def substitute(value, subs: dict):
    if isinstance(value, str):
        for k, v in subs.items():
            value = value.replace("{{" + k + "}}", v)
        return value
    if isinstance(value, list):
        return [substitute(v, subs) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, subs) for k, v in value.items()}
    return value


def load_template(path: str | None) -> dict:
    path = path or (FIXTURE if os.path.exists(FIXTURE) else None)
    if path is None:
        return copy.deepcopy(FALLBACK_TEMPLATE)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def build_event(template: dict, step: dict, base_path: str, token: str, subs: dict) -> dict:
    """An API Gateway HTTP API (v2) event of the template's shape, for one request of the scenario."""
    ev = copy.deepcopy(template)
    path = base_path + substitute(step["path"], subs)
    query = urllib.parse.urlencode([(k, substitute(v, subs)) for k, v in step.get("query", [])])  # spaces as +, like Entra
    body = json.dumps(substitute(step["body"], subs)) if "body" in step else None
    segments = [s for s in path.split("/") if s]
    n_base = len([s for s in base_path.split("/") if s])
    # As the SAM template's routes: ANY <base>/<Resource> and ANY <base>/<Resource>/{proxy+}.
    route = "ANY " + ("/" + "/".join(segments[: n_base + 1]) + "/{proxy+}" if len(segments) > n_base + 1 else path)
    headers = {k.lower(): v for k, v in ev.get("headers", {}).items() if k.lower() not in ("authorization", "content-length", "content-type")}
    headers["authorization"] = f"Bearer {token}"
    headers["content-length"] = str(len(body.encode())) if body is not None else "0"
    if body is not None:
        headers["content-type"] = "application/scim+json; charset=utf-8"
    now = time.time()
    ev.update(routeKey=route, rawPath=path, rawQueryString=query, headers=headers, body=body, isBase64Encoded=False)
    rc = ev.setdefault("requestContext", {})
    rc.setdefault("http", {}).update(method=step["method"], path=path)
    rc["routeKey"] = route
    rc["requestId"] = base64.b64encode(secrets.token_bytes(10)).decode()
    rc["time"] = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
    rc["timeEpoch"] = int(now * 1000)
    return ev


def check_response(inv: Invocation) -> tuple[int | None, dict | None, str | None]:
    """(statusCode, SCIM body, error) of an invocation's answer."""
    if inv.kind == "error":
        return None, None, f"the function reported an invocation error: {inv.body.decode(errors='replace')[:500]}"
    try:
        resp = json.loads(inv.body)
        status = int(resp["statusCode"])
    except (ValueError, KeyError, TypeError) as e:
        return None, None, f"the response is not an API Gateway v2 response ({e}): {inv.body[:300]!r}"
    raw = resp.get("body") or ""
    if resp.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode(errors="replace")
    try:
        scim = json.loads(raw) if raw else None
    except ValueError:
        scim = None
    expect = inv.step.get("expect", 200)
    expected = expect if isinstance(expect, list) else [expect]
    if status not in expected:
        return status, scim, f"statusCode {status}, expected {'/'.join(map(str, expected))}: {raw[:300]}"
    if inv.step.get("expect_ops"):
        bad = [op for op in (scim or {}).get("Operations", []) if int(op.get("status", 0)) >= 400]
        if bad or not (scim or {}).get("Operations"):
            return status, scim, f"bulk operations failed: {json.dumps(bad or scim)[:300]}"
    return status, scim, None


def lambda_env(args, binary: str, port: int) -> dict:
    env = dict(os.environ) if args.inherit_env else {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": ":UTC"}
    given = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            if name not in os.environ:
                raise Failure(f"-e {name}: not set in this environment")
            value = os.environ[name]
        given[name] = value
    name = given.get("AWS_LAMBDA_FUNCTION_NAME") or os.path.basename(binary)
    region = given.get("AWS_REGION") or "us-east-1"
    env.update({
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(args.memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + secrets.token_hex(16),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    env.update(given)
    env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{port}"
    return env


def parent_death_signal():
    """preexec_fn: the child gets SIGKILL if this process dies without cleaning up (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def reported_init_ms(lines: list[str]) -> float | None:
    """init_ms of the function's own `initialised` log line (JSON on Lambda, key=value otherwise)."""
    for line in lines:
        try:
            fields = json.loads(line).get("fields", {})
            if fields.get("message") == "initialised" and "init_ms" in fields:
                return float(fields["init_ms"])
        except (ValueError, AttributeError):
            m = re.search(r"initialised.*init_ms=([0-9.]+)|init_ms=([0-9.]+).*initialised", line)
            if m:
                return float(m.group(1) or m.group(2))
    return None


def init_errors(log: list[dict], init_ms: float) -> list[str]:
    """ERROR lines of the init: those before the `initialised` line, or (without one) read before the first
    GET .../next. Lines are in the order the function wrote them; their arrival times may lag."""
    lines = [l["line"] for l in log]
    end = next((i for i, l in enumerate(lines) if '"initialised"' in l or ("initialised" in l and "init_ms" in l)), None)
    init = lines[:end] if end is not None else [l["line"] for l in log if l["ms"] <= init_ms]
    return [l for l in init if log_level(l) == "ERROR"]


def log_level(line: str) -> str | None:
    try:
        return json.loads(line).get("level")
    except (ValueError, AttributeError):
        m = re.search(r"\b(ERROR|WARN)\b", line)
        return m.group(1) if m else None


def run(args) -> dict:
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        raise Failure(f"{args.binary}: not an executable file")
    steps = SCENARIOS.get(args.scenario)
    if steps is None:
        try:
            with open(args.scenario, encoding="utf-8") as f:
                steps = json.load(f)
        except OSError as e:
            raise Failure(f"--scenario {args.scenario}: neither {', '.join(SCENARIOS)} nor a readable file ({e})") from None
    template = load_template(args.template)

    state = State(args)
    server = Server(("127.0.0.1", args.port), Handler)
    server.state, server.verbose = state, args.verbose
    port = server.server_address[1]
    env = lambda_env(args, binary, port)
    token = args.token or env.get("SCIM_BEARER_TOKEN")
    if not token:
        raise Failure("no bearer token for the requests: pass -e SCIM_BEARER_TOKEN[=...] or --token")
    base_path = "/" + env.get("SCIM_BASE_PATH", "/scim/v2").strip().strip("/")
    base_path = "" if base_path == "/" else base_path
    state.function_arn = f"arn:aws:lambda:{env['AWS_REGION']}:123456789012:function:{env['AWS_LAMBDA_FUNCTION_NAME']}"
    run_tag = secrets.token_hex(4)
    subs = {"uniq": f"{run_tag}-1", "id": "{{id}}"}
    total = 1 + args.warm

    result = {
        "function": env["AWS_LAMBDA_FUNCTION_NAME"], "binary": binary, "runtime_api": env["AWS_LAMBDA_RUNTIME_API"],
        "ok": False, "failure": None, "init_ms": None, "reported_init_ms": None, "first_ms": None, "warm_ms": [],
        "invocations": [], "log": [],
    }
    log: list[dict] = result["log"]
    child = None
    t_spawn = 0.0

    def describe(inv: Invocation) -> str:
        ev = inv.event
        return f"{ev['requestContext']['http']['method']} {ev['rawPath']}" + (f"?{ev['rawQueryString']}" if ev["rawQueryString"] else "")

    def wait_for(cond, timeout: float, what: str):
        limit = time.monotonic() + timeout
        with state.cv:
            while True:
                if cond():
                    return
                if state.init_error:
                    raise Failure(f"the function reported an init error: {state.init_error[:500]}")
                if state.unexpected:
                    raise Failure(state.unexpected[0])
                if state.child_exit is not None:
                    raise Failure(f"the function exited with status {state.child_exit} while waiting for {what}")
                left = limit - time.monotonic()
                if left <= 0:
                    raise Failure(f"timed out after {timeout:g} s waiting for {what}")
                state.cv.wait(min(left, 0.5))

    try:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        # Lambda's cold start: the invocation is already waiting when the runtime first asks for one.
        inv = Invocation(1, 0, steps[0], build_event(template, steps[0], base_path, token, subs))
        state.pending = inv
        t_spawn = time.perf_counter()
        try:
            child = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     preexec_fn=parent_death_signal(), close_fds=True)
        except OSError as e:
            raise Failure(f"cannot start {binary}: {e}") from None

        def read_logs():  # each line with its arrival time, in ms since the spawn (the log has no timestamps)
            for raw in child.stdout:
                ms = (time.perf_counter() - t_spawn) * 1000
                line = raw.decode(errors="replace").rstrip("\n")
                log.append({"ms": round(ms, 3), "line": line})
                if args.verbose:
                    sys.stderr.write(f"  [{result['function']} +{ms:8.1f} ms] {line}\n")

        def reap():
            code = child.wait()
            with state.cv:
                state.child_exit = code
                state.cv.notify_all()

        threading.Thread(target=read_logs, daemon=True).start()
        threading.Thread(target=reap, daemon=True).start()

        wait_for(lambda: state.t_first_next is not None, args.init_timeout, "the first GET .../invocation/next (init)")
        result["init_ms"] = (state.t_first_next - t_spawn) * 1000
        errors = init_errors(list(log), result["init_ms"])  # again at the end: the reader may lag behind
        if errors and not args.allow_init_errors:
            raise Failure(f"the function logged an error during init: {errors[0][:500]}")

        for n in range(1, total + 1):
            wait_for(lambda: inv.t_done is not None, args.invoke_timeout, f"the answer to invocation {n} ({describe(inv)})")
            ms = (inv.t_done - inv.t_sent) * 1000
            status, scim, error = check_response(inv)
            result["invocations"].append({"n": n, "cold": n == 1, "step": inv.index, "request": describe(inv), "expect": inv.step.get("expect", 200),
                                          "status": status, "ms": round(ms, 3), "request_id": inv.request_id})
            if error:
                raise Failure(f"invocation {n} ({describe(inv)}): {error}")
            if n == 1:
                result["first_ms"] = ms
            else:
                result["warm_ms"].append(ms)
            if isinstance(scim, dict) and isinstance(scim.get("id"), str):
                subs["id"] = scim["id"]
            if n < total:
                subs["uniq"] = f"{run_tag}-{n + 1}"
                step = steps[n % len(steps)]
                inv = Invocation(n + 1, n % len(steps), step, build_event(template, step, base_path, token, subs))
                if "{{" in inv.payload.decode():
                    raise Failure(f"invocation {n + 1}: a placeholder has no value yet: {describe(inv)}")
                with state.cv:
                    state.pending = inv
                    state.cv.notify_all()
        # Give the last log lines a moment (the audit line of the last request comes before the response).
        time.sleep(0.05)
        errors = init_errors(list(log), result["init_ms"])
        if errors and not args.allow_init_errors:
            raise Failure(f"the function logged an error during init: {errors[0][:500]}")
        result["ok"] = True
    except Failure as e:
        result["failure"] = str(e)
    finally:
        with state.cv:
            state.closing = True
            state.cv.notify_all()
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=3)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=3)
        server.shutdown()
        server.server_close()
        result["reported_init_ms"] = reported_init_ms([l["line"] for l in list(log)])
    return result


def fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:9.1f}"


def print_table(r: dict):
    print(f"{r['function']}: {r['binary']} (runtime API on {r['runtime_api']})")
    own = f"   (the function's own init_ms: {r['reported_init_ms']:.1f})" if r["reported_init_ms"] is not None else ""
    print(f"  {'phase':<16} {'request':<70} {'status':>6} {'ms':>9}")
    print(f"  {'init':<16} {'spawn -> first GET /invocation/next':<70} {'':>6} {fmt(r['init_ms'])}{own}")
    for i in r["invocations"]:
        req = i["request"] if len(i["request"]) <= 70 else i["request"][:67] + "..."
        print(f"  {'invoke %d (%s)' % (i['n'], 'cold' if i['cold'] else 'warm'):<16} {req:<70} {'-' if i['status'] is None else i['status']:>6} {fmt(i['ms'])}")
    if r["warm_ms"]:
        w = r["warm_ms"]
        print(f"  warm: min {min(w):.1f}  median {statistics.median(w):.1f}  max {max(w):.1f} ms")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See the module docstring for scenarios and the environment.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary", help="the function's executable (a lambda_runtime bootstrap)")
    p.add_argument("--scenario", default="users", help="users, groups, discovery, bulk, or a JSON file (default users)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="NAME[=VALUE]",
                   help="environment variable for the function; NAME alone takes its value from this environment")
    p.add_argument("--inherit-env", action="store_true", help="pass this whole environment to the function too")
    p.add_argument("--port", type=int, default=0, help="Runtime API port on 127.0.0.1 (default: a free one)")
    p.add_argument("--warm", type=int, default=5, help="warm invocations after the first (default 5)")
    p.add_argument("--token", help="bearer token for the requests (default: the function's SCIM_BEARER_TOKEN)")
    p.add_argument("--template", help="API Gateway v2 event to shape the events on (default: the repository's users fixture)")
    p.add_argument("--memory", type=int, default=256, help="AWS_LAMBDA_FUNCTION_MEMORY_SIZE (default 256, the template's)")
    p.add_argument("--function-timeout", type=int, default=10, help="seconds, for Lambda-Runtime-Deadline-Ms (default 10, the template's)")
    p.add_argument("--init-timeout", type=float, default=60, help="seconds to wait for the first GET .../next (default 60)")
    p.add_argument("--invoke-timeout", type=float, default=30, help="seconds to wait for each answer (default 30)")
    p.add_argument("--allow-init-errors", action="store_true", help="do not fail when the function logs an ERROR during init")
    p.add_argument("--json", metavar="FILE", help="write the measurements and the function's log (each line with its arrival, ms since the spawn) as JSON")
    p.add_argument("--log", metavar="FILE", help="write the function's stdout and stderr to FILE")
    p.add_argument("--quiet", action="store_true", help="one line instead of the table")
    p.add_argument("--verbose", action="store_true", help="echo the function's log and the Runtime API requests to stderr")
    args = p.parse_args()
    if args.warm < 0 or not 0 <= args.port <= 65535:
        p.error("--warm must be >= 0 and --port in 0..65535")

    # SIGTERM/SIGHUP end the run like Ctrl-C does, through the finally that kills the child.
    def stop(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, stop)

    try:
        r = run(args)
    except Failure as e:
        print(f"lambda_runtime.py: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lambda_runtime.py: interrupted", file=sys.stderr)
        return 130
    if args.log:
        with open(args.log, "w", encoding="utf-8") as f:
            f.writelines(f"{l['line']}\n" for l in r["log"])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(r, f, indent=2)
            f.write("\n")
    if args.quiet:
        if r["ok"]:
            own = f" (own {r['reported_init_ms']:.1f})" if r["reported_init_ms"] is not None else ""
            warm = f", warm median {statistics.median(r['warm_ms']):.1f}" if r["warm_ms"] else ""
            print(f"{r['function']}: init {r['init_ms']:.1f} ms{own}, first request {r['first_ms']:.1f} ms{warm}")
    else:
        print_table(r)
    if not r["ok"]:
        print(f"lambda_runtime.py: {r['function']}: FAILED: {r['failure']}", file=sys.stderr)
        if not args.verbose and r["log"]:
            print("  last lines of the function's log:", file=sys.stderr)
            for l in r["log"][-15:]:
                print(f"    +{l['ms']:.1f} ms {l['line']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
