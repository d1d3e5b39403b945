//! `scim-bench`: an Entra-shaped SCIM workload over HTTP against any SCIM base URL and bearer token, with
//! latency percentiles and throughput per operation, and (optionally) the ceiling of the DynamoDB engine
//! behind it measured with the same SDK calls in the same run. See `docs/benchmark.md`.
//!
//! Loopback only: every URL it is given must name 127.0.0.0/8, ::1 or localhost; redirects are not
//! followed and proxies are not used, so no request leaves the machine. Every loop is bounded in count and
//! in time.

use aws_sdk_dynamodb::types::AttributeValue as AV;
use reqwest::{Method, Url};
use scim_core::store::keys;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const HELP: &str = "scim-bench: Entra-shaped SCIM load against a base URL on this machine

USAGE
  scim-bench --base-url URL --token TOKEN [options]      run the workload, print a table
  scim-bench compare OURS.json THEIRS.json                ratios of two runs' JSON reports

WORKLOAD (default scenario)
  1. initial cycle: for each user, GET /Users?filter=userName eq \"..\" then POST /Users (Entra's body);
     then each group: GET /Groups?filter=displayName eq \"..\"&excludedAttributes=members, POST /Groups,
     members added by PATCH {\"op\":\"Add\",\"path\":\"members\",\"value\":[..]} in batches
  2. reads: GET /Users/{id}, then GET /Users?filter=userName eq, each alone for --read-secs
  3. engine ceiling (with --ceiling): GetItem by key and a GSI Query, straight to the DynamoDB endpoint
  4. incremental cycles for --duration-secs: GET by id + PATCH (Entra's dialect), userName filters,
     disables, member add/remove, group reads, a delete now and then
  5. list paging: GET /Users?startIndex=..&count=.. over every user, --page-rounds times
  6. Entra quirks (a few requests each, not counted in the workload totals): shapes Entra sends that
     RFC-strict servers may reject

OPTIONS
  --base-url URL          SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2 (loopback only)
  --token TOKEN           bearer token (any value for a server without auth)
  --label NAME            name of the server in the report (default: the base URL)
  --scenario S            default | scale | walk (default: default)
  --users N               users to create (default 1000; scale: 100000)
  --groups N              groups to create (default 10)
  --group-size N          members per group (default 100)
  --member-batch N        members per PATCH (default 10)
  --concurrency N         concurrent requests (default 8)
  --duration-secs N       incremental phase length (default 30)
  --read-secs N           length of each pure read phase and of each ceiling measurement (default 5; scale: 10)
  --page-size N           count of a list page (default 100)
  --page-rounds N         passes over all pages (default 2)
  --quirks N              requests per Entra-quirk probe (default 5; 0 skips them)
  --max-phase-secs N      hard time limit of every phase (default 300; scale: 3600)
  --ceiling URL           DynamoDB endpoint of the server's engine (loopback only): measure GetItem and
                          GSI Query on it with the same SDK, at --concurrency
  --ceiling-table NAME    table (default scim);  --ceiling-tenant NAME  tenant (default default)
  --ceiling-data-dir DIR  the server's SCIM_DATA_DIR (required with --ceiling): the engine's listener lets
                          in only calls signed with the key kept there (engine-key)
  --server-pid PID        report the server's peak and current RSS (/proc/PID/status) at the end
  --json FILE             also write the report as JSON

SCALE SCENARIO (--scenario scale)
  loads --users users (+64 spare) with concurrent POSTs (--load-concurrency, default 8), groups of
  --scale-group-sizes members (default 10,1000,100000; PATCHes of --load-member-batch, default 1000),
  then measures GET by id and userName eq at --concurrency for --read-secs each, a full walk of all users
  by startIndex and one by cursor (--page-size a page, one request at a time, as Entra's discovery),
  user PATCH at --concurrency, and member add (+ remove) of one user to each group, interleaved,
  --samples times (default 200), one at a time.

WALK SCENARIO (--scenario walk)
  loads --users users (default 100000) as the scale scenario does, then only the two full walks.
";

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const CALLS_HEADER: &str = "x-scim-dynamodb-calls";
/// `read=<units>, write=<units>`: the capacity DynamoDB reported consumed by the request.
const CAPACITY_HEADER: &str = "x-scim-dynamodb-capacity";
const SPARE_USERS: usize = 64;

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Clone, Debug, PartialEq)]
enum Scenario {
    Default,
    Scale,
    /// Load users, then only the full walks (index and cursor).
    Walk,
}

#[derive(Clone, Debug)]
struct Opts {
    base_url: String,
    token: String,
    label: String,
    scenario: Scenario,
    users: usize,
    groups: usize,
    group_size: usize,
    member_batch: usize,
    concurrency: usize,
    duration_secs: u64,
    read_secs: u64,
    page_size: usize,
    page_rounds: usize,
    quirks: usize,
    max_phase_secs: u64,
    ceiling: Option<String>,
    /// The engine's key (from --ceiling-data-dir), to sign the ceiling's calls.
    ceiling_key: Option<scim_local::engine_door::EngineKey>,
    ceiling_table: String,
    ceiling_tenant: String,
    server_pid: Option<u32>,
    json: Option<String>,
    load_concurrency: usize,
    load_member_batch: usize,
    scale_group_sizes: Vec<usize>,
    samples: usize,
}

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut kv: BTreeMap<String, String> = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let Some(name) = a.strip_prefix("--") else {
            return Err(format!("unexpected argument {a}"));
        };
        let (name, value) = match name.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => {
                i += 1;
                (
                    name.to_string(),
                    args.get(i)
                        .cloned()
                        .ok_or_else(|| format!("--{name} needs a value"))?,
                )
            }
        };
        kv.insert(name, value);
        i += 1;
    }
    let known = [
        "base-url",
        "token",
        "label",
        "scenario",
        "users",
        "groups",
        "group-size",
        "member-batch",
        "concurrency",
        "duration-secs",
        "read-secs",
        "page-size",
        "page-rounds",
        "quirks",
        "max-phase-secs",
        "ceiling",
        "ceiling-table",
        "ceiling-tenant",
        "ceiling-data-dir",
        "server-pid",
        "json",
        "load-concurrency",
        "load-member-batch",
        "scale-group-sizes",
        "samples",
    ];
    if let Some(k) = kv.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("unknown option --{k}; see --help"));
    }
    let scenario = match kv.get("scenario").map(String::as_str).unwrap_or("default") {
        "default" => Scenario::Default,
        "scale" => Scenario::Scale,
        "walk" => Scenario::Walk,
        s => return Err(format!("unknown scenario {s}")),
    };
    let scale = scenario != Scenario::Default;
    let num = |k: &str, d: usize| -> Result<usize, String> {
        kv.get(k)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| format!("--{k} wants a number, got {v}"))
            })
            .unwrap_or(Ok(d))
    };
    let base_url = kv
        .get("base-url")
        .cloned()
        .ok_or("--base-url is required")?
        .trim_end_matches('/')
        .to_string();
    check_loopback(&base_url)?;
    let mut ceiling_key = None;
    if let Some(c) = kv.get("ceiling") {
        check_loopback(c)?;
        let dir = kv.get("ceiling-data-dir").ok_or("--ceiling needs --ceiling-data-dir (the server's SCIM_DATA_DIR, which keeps the engine's key)")?;
        ceiling_key = Some(scim_local::engine_door::EngineKey::read(
            std::path::Path::new(dir),
        )?);
    }
    let sizes = match kv.get("scale-group-sizes") {
        Some(s) => s
            .split(',')
            .map(|x| {
                x.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("bad --scale-group-sizes {s}"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![10, 1000, 100_000],
    };
    let o = Opts {
        label: kv.get("label").cloned().unwrap_or_else(|| base_url.clone()),
        base_url,
        token: kv
            .get("token")
            .cloned()
            .ok_or("--token is required (any value for a server without auth)")?,
        scenario,
        users: num("users", if scale { 100_000 } else { 1000 })?,
        groups: num("groups", 10)?,
        group_size: num("group-size", 100)?,
        member_batch: num("member-batch", 10)?.max(1),
        concurrency: num("concurrency", 8)?.clamp(1, 256),
        duration_secs: num("duration-secs", 30)? as u64,
        read_secs: num("read-secs", if scale { 10 } else { 5 })? as u64,
        page_size: num("page-size", 100)?.max(1),
        page_rounds: num("page-rounds", 2)?,
        quirks: num("quirks", 5)?,
        max_phase_secs: num("max-phase-secs", if scale { 3600 } else { 300 })?.max(1) as u64,
        ceiling: kv.get("ceiling").cloned(),
        ceiling_key,
        ceiling_table: kv
            .get("ceiling-table")
            .cloned()
            .unwrap_or_else(|| "scim".into()),
        ceiling_tenant: kv
            .get("ceiling-tenant")
            .cloned()
            .unwrap_or_else(|| "default".into()),
        server_pid: kv
            .get("server-pid")
            .map(|p| p.parse().map_err(|_| format!("bad --server-pid {p}")))
            .transpose()?,
        json: kv.get("json").cloned(),
        load_concurrency: num("load-concurrency", 8)?.clamp(1, 256),
        load_member_batch: num("load-member-batch", 1000)?.max(1),
        scale_group_sizes: sizes,
        samples: num("samples", 200)?,
    };
    Ok(o)
}

/// Refuse any URL whose host is not a loopback address (127.0.0.0/8, ::1) or `localhost`.
fn check_loopback(url: &str) -> Result<(), String> {
    let u = Url::parse(url).map_err(|e| format!("{url}: not a URL ({e})"))?;
    if u.scheme() != "http" {
        return Err(format!(
            "{url}: only http:// on a loopback address is allowed"
        ));
    }
    // `host_str` is the parsed, normalised host (`127.1` and `0x7f.0.0.1` come out as `127.0.0.1`).
    let host = u.host_str().unwrap_or("");
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ok = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
    if ok {
        Ok(())
    } else {
        Err(format!("{url}: refused, the benchmark only talks to loopback addresses (127.0.0.0/8, ::1, localhost)"))
    }
}

// ---------------------------------------------------------------------------------------------
// Recording

#[derive(Default)]
struct OpRec {
    phase: String,
    lat_us: Vec<u32>,
    errors: u64,
    statuses: BTreeMap<String, u64>,
    calls: Vec<u32>,
    /// (read, write) capacity units per answered request.
    capacity: Vec<(f64, f64)>,
    first_error: Option<Value>,
}

#[derive(Default)]
struct Recorder {
    ops: Mutex<Vec<(String, OpRec)>>,
    phases: Mutex<Vec<(String, f64)>>,
}

impl Recorder {
    fn with<R>(&self, phase: &str, op: &str, f: impl FnOnce(&mut OpRec) -> R) -> R {
        let mut ops = self.ops.lock().unwrap();
        let i = match ops.iter().position(|(n, _)| n == op) {
            Some(i) => i,
            None => {
                ops.push((
                    op.to_string(),
                    OpRec {
                        phase: phase.to_string(),
                        ..Default::default()
                    },
                ));
                ops.len() - 1
            }
        };
        f(&mut ops[i].1)
    }

    fn record(
        &self,
        phase: &str,
        op: &str,
        us: u32,
        status: u16,
        usage: Usage,
        err: Option<Value>,
    ) {
        self.with(phase, op, |r| {
            r.lat_us.push(us);
            *r.statuses
                .entry(if status == 0 {
                    "transport".into()
                } else {
                    status.to_string()
                })
                .or_default() += 1;
            if let Some(c) = usage.calls {
                r.calls.push(c);
            }
            if let Some(c) = usage.capacity {
                r.capacity.push(c);
            }
            if let Some(e) = err {
                r.errors += 1;
                if r.first_error.is_none() {
                    r.first_error = Some(e);
                }
            }
        })
    }

    /// A 2xx answer that is wrong all the same (no id, a filter that found the wrong number of users).
    fn mark_error(&self, phase: &str, op: &str, detail: Value) {
        self.with(phase, op, |r| {
            r.errors += 1;
            if r.first_error.is_none() {
                r.first_error = Some(detail);
            }
        })
    }

    fn end_phase(&self, name: &str, started: Instant) {
        let secs = started.elapsed().as_secs_f64();
        self.phases.lock().unwrap().push((name.to_string(), secs));
        eprintln!("  phase {name}: {secs:.1} s");
    }
}

fn pct(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

// ---------------------------------------------------------------------------------------------
// HTTP

struct Scim {
    http: reqwest::Client,
    base: String,
    auth: String,
}

struct Reply {
    status: u16,
    body: Value,
    /// Latency in microseconds and what the server reported about its DynamoDB use.
    us: u32,
    usage: Usage,
}

impl Reply {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Scim {
    async fn req(
        &self,
        rec: &Recorder,
        phase: &str,
        op: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let url = format!("{}{}", self.base, path);
        let mut rb = self
            .http
            .request(method.clone(), &url)
            .header("Authorization", &self.auth)
            .header("Accept", "application/scim+json");
        let body_text = body.map(Value::to_string);
        if let Some(b) = &body_text {
            rb = rb
                .header("Content-Type", "application/scim+json")
                .body(b.clone());
        }
        let t0 = Instant::now();
        let (status, text, usage) = match rb.send().await {
            Ok(r) => {
                let st = r.status().as_u16();
                let usage = Usage::of(r.headers());
                match r.text().await {
                    Ok(t) => (st, t, usage),
                    Err(e) => (0, format!("reading the body failed: {e}"), usage),
                }
            }
            Err(e) => (0, format!("request failed: {e}"), Usage::default()),
        };
        let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
        let ok = (200..300).contains(&status);
        let err = (!ok).then(|| {
            let mut resp = text.clone();
            resp.truncate(800);
            json!({"request": format!("{method} {path}"), "body": body_text.as_deref().map(|b| b.chars().take(800).collect::<String>()),
                   "status": status, "response": resp})
        });
        rec.record(phase, op, us, status, usage, err);
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            us,
            usage,
        }
    }
}

/// What the server reported about one request's DynamoDB use (headers it sends when
/// `SCIM_EXPOSE_CALL_COUNT=1`; absent for other servers).
#[derive(Default, Clone, Copy)]
struct Usage {
    calls: Option<u32>,
    capacity: Option<(f64, f64)>,
}

impl Usage {
    fn of(h: &reqwest::header::HeaderMap) -> Usage {
        let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
        let capacity = text(CAPACITY_HEADER).and_then(|v| {
            let unit = |k: &str| {
                v.split(", ")
                    .find_map(|p| p.strip_prefix(k))
                    .and_then(|n| n.parse::<f64>().ok())
            };
            Some((unit("read=")?, unit("write=")?))
        });
        Usage {
            calls: text(CALLS_HEADER).and_then(|v| v.parse().ok()),
            capacity,
        }
    }
}

/// Percent-encode a query value (everything but unreserved characters), as Entra does (`%20`, not `+`).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// xorshift64*: a tiny deterministic generator (one per worker).
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies (Entra's shapes; docs/entra-dialect.md §1.3, §2)

fn user_name(run: &str, i: usize) -> String {
    format!("bench{run}.u{i}@contoso.com")
}

fn external_id(run: &str, i: usize) -> String {
    format!("bench{run}-u{i}")
}

fn user_body(run: &str, i: usize) -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": external_id(run, i),
        "userName": user_name(run, i),
        "active": true,
        "displayName": format!("Bench User {i}"),
        "emails": [{"primary": true, "type": "work", "value": format!("u{i}.{run}@contoso.com")}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": format!("Given{i} Family"), "familyName": "Family", "givenName": format!("Given{i}")},
        "title": "Engineer",
        ENTERPRISE: {"department": format!("Dept {}", i % 17), "employeeNumber": format!("E{i:07}")},
        "roles": []
    })
}

fn group_name(run: &str, g: usize) -> String {
    format!("Bench Group {g} {run}")
}

fn group_body(run: &str, g: usize) -> Value {
    json!({"schemas": [GROUP_SCHEMA], "externalId": format!("bench{run}-g{g}"), "displayName": group_name(run, g), "members": []})
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

fn add_members(ids: &[&str]) -> Value {
    let vals: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    patch(json!([{"op": "Add", "path": "members", "value": vals}]))
}

/// RFC 7644 §3.5.2.2 flag form; both servers accept it (Entra's default `path:"members"` + value array is a
/// quirk probe).
fn remove_member(id: &str) -> Value {
    patch(json!([{"op": "Remove", "path": format!("members[value eq \"{id}\"]")}]))
}

/// The incremental update Entra sends for a changed user: capitalised ops, a value-path email, a URN path,
/// `active` as a string.
fn user_update(i: usize, n: u64, run: &str) -> Value {
    patch(json!([
        {"op": "Replace", "path": "displayName", "value": format!("Bench User {i} v{n}")},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": format!("u{i}.v{n}.{run}@contoso.com")},
        {"op": "Replace", "path": format!("{ENTERPRISE}:department"), "value": format!("Dept {}", n % 17)},
        {"op": "Replace", "path": "active", "value": "True"}
    ]))
}

fn disable() -> Value {
    patch(json!([{"op": "Replace", "path": "active", "value": "False"}]))
}

// ---------------------------------------------------------------------------------------------
// Shared state

#[derive(Clone, Debug)]
struct UserInfo {
    idx: usize,
    id: String,
    name: String,
}

struct GroupInfo {
    id: String,
    members: Mutex<HashSet<usize>>,
}

struct Ctx {
    scim: Scim,
    rec: Recorder,
    o: Opts,
    run: String,
    users: Mutex<Vec<Option<UserInfo>>>,
    groups: Mutex<Vec<Arc<GroupInfo>>>,
    started: Instant,
    /// Summaries of the full walks (scale and walk scenarios).
    walks: Mutex<Vec<Value>>,
}

impl Ctx {
    fn deadline(&self, secs: u64) -> Instant {
        Instant::now() + Duration::from_secs(secs.min(self.o.max_phase_secs))
    }
    fn live_users(&self) -> Vec<UserInfo> {
        self.users
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }
}

async fn run_workers<F, Fut>(n: usize, f: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|w| tokio::spawn(f(w))).collect();
    for h in handles {
        if let Err(e) = h.await {
            eprintln!("scim-bench: a worker failed: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Phases of the default scenario

/// Entra's initial cycle for users: look the user up by userName, then create it.
async fn phase_initial_users(
    ctx: &Arc<Ctx>,
    phase: &'static str,
    n: usize,
    concurrency: usize,
    lookup: bool,
) {
    let t = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = ctx.deadline(ctx.o.max_phase_secs);
    run_workers(concurrency, |_| {
        let (ctx, next) = (ctx.clone(), next.clone());
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || Instant::now() > deadline {
                    break;
                }
                let name = user_name(&ctx.run, i);
                if lookup {
                    let path = format!("/Users?filter={}", enc(&format!("userName eq \"{name}\"")));
                    let r = ctx
                        .scim
                        .req(
                            &ctx.rec,
                            phase,
                            "filter_user_absent",
                            Method::GET,
                            &path,
                            None,
                        )
                        .await;
                    if r.ok() && r.body["totalResults"].as_u64() != Some(0) {
                        ctx.rec.mark_error(
                            phase,
                            "filter_user_absent",
                            json!({"request": path, "unexpected": r.body}),
                        );
                    }
                }
                let op = if lookup {
                    "create_user"
                } else {
                    "load_create_user"
                };
                let r = ctx
                    .scim
                    .req(
                        &ctx.rec,
                        phase,
                        op,
                        Method::POST,
                        "/Users",
                        Some(&user_body(&ctx.run, i)),
                    )
                    .await;
                match r.body["id"].as_str() {
                    Some(id) if r.ok() => {
                        ctx.users.lock().unwrap()[i] = Some(UserInfo {
                            idx: i,
                            id: id.to_string(),
                            name,
                        })
                    }
                    _ if r.ok() => ctx.rec.mark_error(
                        phase,
                        op,
                        json!({"request": "POST /Users", "unexpected": "no id in the answer"}),
                    ),
                    _ => {}
                }
            }
        }
    })
    .await;
    ctx.rec.end_phase(phase, t);
}

/// Entra's initial cycle for groups: look up by displayName, create empty, add members in batches.
async fn phase_groups(ctx: &Arc<Ctx>) {
    let phase = "groups";
    let t = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = ctx.deadline(ctx.o.max_phase_secs);
    let users = ctx.users.lock().unwrap().clone();
    let users = Arc::new(users);
    let (g_count, size, batch) = (ctx.o.groups, ctx.o.group_size, ctx.o.member_batch);
    run_workers(ctx.o.concurrency.min(g_count.max(1)), |_| {
        let (ctx, next, users) = (ctx.clone(), next.clone(), users.clone());
        async move {
            loop {
                let g = next.fetch_add(1, Ordering::Relaxed);
                if g >= g_count || Instant::now() > deadline {
                    break;
                }
                let name = group_name(&ctx.run, g);
                let path = format!(
                    "/Groups?excludedAttributes=members&filter={}",
                    enc(&format!("displayName eq \"{name}\""))
                );
                ctx.scim
                    .req(
                        &ctx.rec,
                        phase,
                        "filter_group_absent",
                        Method::GET,
                        &path,
                        None,
                    )
                    .await;
                let r = ctx
                    .scim
                    .req(
                        &ctx.rec,
                        phase,
                        "create_group",
                        Method::POST,
                        "/Groups",
                        Some(&group_body(&ctx.run, g)),
                    )
                    .await;
                let Some(gid) = r.body["id"].as_str().filter(|_| r.ok()).map(str::to_string) else {
                    continue;
                };
                let info = Arc::new(GroupInfo {
                    id: gid.clone(),
                    members: Mutex::new(HashSet::new()),
                });
                ctx.groups.lock().unwrap().push(info.clone());
                let n = users.len().max(1);
                let mut wanted: Vec<&UserInfo> = (0..size)
                    .filter_map(|k| users[(g * size + k) % n].as_ref())
                    .collect();
                wanted.dedup_by_key(|u| u.idx);
                for chunk in wanted.chunks(batch) {
                    if Instant::now() > deadline {
                        break;
                    }
                    let ids: Vec<&str> = chunk.iter().map(|u| u.id.as_str()).collect();
                    let r = ctx
                        .scim
                        .req(
                            &ctx.rec,
                            phase,
                            "add_members_batch",
                            Method::PATCH,
                            &format!("/Groups/{gid}"),
                            Some(&add_members(&ids)),
                        )
                        .await;
                    if r.ok() {
                        info.members
                            .lock()
                            .unwrap()
                            .extend(chunk.iter().map(|u| u.idx));
                    }
                }
            }
        }
    })
    .await;
    ctx.rec.end_phase(phase, t);
}

/// One kind of read alone, at full concurrency, for `secs`.
async fn phase_reads(
    ctx: &Arc<Ctx>,
    phase: &'static str,
    op: &'static str,
    secs: u64,
    users: Arc<Vec<UserInfo>>,
) {
    if users.is_empty() {
        return;
    }
    let t = Instant::now();
    let deadline = ctx.deadline(secs);
    run_workers(ctx.o.concurrency, |w| {
        let (ctx, users) = (ctx.clone(), users.clone());
        async move {
            let mut rng = Rng::new(w as u64 + 7);
            for _ in 0..100_000_000u64 {
                if Instant::now() > deadline {
                    break;
                }
                let u = &users[rng.below(users.len())];
                read_one(&ctx, phase, op, u).await;
            }
        }
    })
    .await;
    ctx.rec.end_phase(phase, t);
}

async fn read_one(ctx: &Ctx, phase: &str, op: &str, u: &UserInfo) {
    if op.ends_with("get_user") {
        let r = ctx
            .scim
            .req(
                &ctx.rec,
                phase,
                op,
                Method::GET,
                &format!("/Users/{}", u.id),
                None,
            )
            .await;
        if r.ok() && r.body["id"].as_str() != Some(u.id.as_str()) {
            ctx.rec.mark_error(
                phase,
                op,
                json!({"request": format!("GET /Users/{}", u.id), "unexpected": r.body}),
            );
        }
    } else {
        let path = format!(
            "/Users?filter={}",
            enc(&format!("userName eq \"{}\"", u.name))
        );
        let r = ctx
            .scim
            .req(&ctx.rec, phase, op, Method::GET, &path, None)
            .await;
        if r.ok() && r.body["totalResults"].as_u64() != Some(1) {
            ctx.rec
                .mark_error(phase, op, json!({"request": path, "unexpected": r.body}));
        }
    }
}

/// The engine's ceiling: GetItem by key (strongly consistent, as the store reads) and a GSI Query on
/// `gsi1`, each at `--concurrency` for `--read-secs`, with the SDK the server uses.
async fn phase_ceiling(ctx: &Arc<Ctx>, users: Arc<Vec<UserInfo>>) {
    let (Some(ep), Some(key)) = (ctx.o.ceiling.clone(), ctx.o.ceiling_key.clone()) else {
        return;
    };
    if users.is_empty() {
        return;
    }
    // A client of its own, signed with the engine's key (the store's traits have no raw GetItem or Query).
    let (key_id, secret) = key.credentials();
    let table = ctx.o.ceiling_table.clone();
    let client = aws_sdk_dynamodb::Client::from_conf(
        scim_core::store::dynamo::engine_sdk_config(&ep, Duration::from_secs(10), key_id, secret)
            .build(),
    );
    let store = Arc::new((client, table));
    for op in ["ceiling_get_item", "ceiling_gsi_query"] {
        let phase = op;
        let t = Instant::now();
        let deadline = ctx.deadline(ctx.o.read_secs);
        run_workers(ctx.o.concurrency, |w| {
            let (ctx, users, store) = (ctx.clone(), users.clone(), store.clone());
            async move {
                let rt = scim_core::schema::user_resource_type();
                let tenant = ctx.o.ceiling_tenant.clone();
                let mut rng = Rng::new(w as u64 + 99);
                for _ in 0..100_000_000u64 {
                    if Instant::now() > deadline {
                        break;
                    }
                    let u = &users[rng.below(users.len())];
                    let t0 = Instant::now();
                    let found = if op == "ceiling_get_item" {
                        store
                            .0
                            .get_item()
                            .table_name(&store.1)
                            .key(keys::PK, AV::S(keys::resource_pk(&tenant, rt)))
                            .key(keys::SK, AV::S(u.id.clone()))
                            .consistent_read(true)
                            .send()
                            .await
                            .map(|r| r.item.is_some() as usize)
                            .map_err(|e| format!("{e:?}"))
                    } else {
                        store
                            .0
                            .query()
                            .table_name(&store.1)
                            .index_name(keys::GSI1)
                            .key_condition_expression("#k = :k")
                            .expression_attribute_names("#k", keys::GSI1PK)
                            .expression_attribute_values(":k", AV::S(keys::gsi1pk(&tenant, rt, &u.name.to_lowercase())))
                            .send()
                            .await
                            .map(|r| r.items.map(|i| i.len()).unwrap_or(0))
                            .map_err(|e| format!("{e:?}"))
                    };
                    let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    match found {
                        Ok(1) => ctx.rec.record(phase, op, us, 200, Usage::default(), None),
                        Ok(n) => ctx.rec.record(phase, op, us, 200, Usage::default(), Some(json!({"request": op, "unexpected": format!("{n} items for user {}", u.id)}))),
                        Err(e) => ctx.rec.record(phase, op, us, 0, Usage::default(), Some(json!({"request": op, "error": e.chars().take(400).collect::<String>()}))),
                    }
                }
            }
        })
        .await;
        ctx.rec.end_phase(phase, t);
    }
}

/// Incremental cycles: each worker owns the users whose index ≡ worker (mod concurrency), so no two
/// requests touch one user at once (as Entra serialises per object); groups are shared.
async fn phase_incremental(ctx: &Arc<Ctx>) {
    let phase = "incremental";
    let t = Instant::now();
    let deadline = ctx.deadline(ctx.o.duration_secs);
    let live = ctx.live_users();
    let deletes_left = Arc::new(AtomicUsize::new(live.len() / 10));
    let c = ctx.o.concurrency;
    run_workers(c, |w| {
        let ctx = ctx.clone();
        let deletes_left = deletes_left.clone();
        let mut mine: Vec<UserInfo> = live.iter().filter(|u| u.idx % c == w).cloned().collect();
        async move {
            let mut rng = Rng::new(w as u64 + 1234);
            let groups: Vec<Arc<GroupInfo>> = ctx.groups.lock().unwrap().clone();
            let mut n: u64 = 0;
            while Instant::now() < deadline && !mine.is_empty() && n < 100_000_000 {
                n += 1;
                let k = rng.below(mine.len());
                let u = mine[k].clone();
                let roll = rng.below(100);
                match roll {
                    0..=33 => {
                        read_one(&ctx, phase, "incr_get_user", &u).await;
                        let body = user_update(u.idx, n, &ctx.run);
                        ctx.scim
                            .req(
                                &ctx.rec,
                                phase,
                                "incr_patch_user",
                                Method::PATCH,
                                &format!("/Users/{}", u.id),
                                Some(&body),
                            )
                            .await;
                    }
                    34..=49 => read_one(&ctx, phase, "incr_filter_user", &u).await,
                    50..=59 => {
                        ctx.scim
                            .req(
                                &ctx.rec,
                                phase,
                                "incr_disable_user",
                                Method::PATCH,
                                &format!("/Users/{}", u.id),
                                Some(&disable()),
                            )
                            .await;
                    }
                    60..=69 if !groups.is_empty() => {
                        let g = &groups[rng.below(groups.len())];
                        let fresh = { g.members.lock().unwrap().insert(u.idx) };
                        if fresh {
                            let r = ctx
                                .scim
                                .req(
                                    &ctx.rec,
                                    phase,
                                    "incr_group_add_member",
                                    Method::PATCH,
                                    &format!("/Groups/{}", g.id),
                                    Some(&add_members(&[&u.id])),
                                )
                                .await;
                            if !r.ok() {
                                g.members.lock().unwrap().remove(&u.idx);
                            }
                        }
                    }
                    70..=77 if !groups.is_empty() => {
                        let g = &groups[rng.below(groups.len())];
                        // One of this worker's users that is a member of g.
                        let pick = {
                            let m = g.members.lock().unwrap();
                            let mut found = None;
                            for _ in 0..16 {
                                let cand = &mine[rng.below(mine.len())];
                                if m.contains(&cand.idx) {
                                    found = Some(cand.clone());
                                    break;
                                }
                            }
                            found
                        };
                        if let Some(m) = pick {
                            let r = ctx
                                .scim
                                .req(
                                    &ctx.rec,
                                    phase,
                                    "incr_group_remove_member",
                                    Method::PATCH,
                                    &format!("/Groups/{}", g.id),
                                    Some(&remove_member(&m.id)),
                                )
                                .await;
                            if r.ok() {
                                g.members.lock().unwrap().remove(&m.idx);
                            }
                        }
                    }
                    78..=89 if !groups.is_empty() => {
                        let g = &groups[rng.below(groups.len())];
                        ctx.scim
                            .req(
                                &ctx.rec,
                                phase,
                                "incr_get_group",
                                Method::GET,
                                &format!("/Groups/{}?excludedAttributes=members", g.id),
                                None,
                            )
                            .await;
                    }
                    90..=91
                        if mine.len() > 1
                            && deletes_left
                                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                                    d.checked_sub(1)
                                })
                                .is_ok() =>
                    {
                        let r = ctx
                            .scim
                            .req(
                                &ctx.rec,
                                phase,
                                "incr_delete_user",
                                Method::DELETE,
                                &format!("/Users/{}", u.id),
                                None,
                            )
                            .await;
                        if r.ok() || r.status == 404 {
                            mine.swap_remove(k);
                            ctx.users.lock().unwrap()[u.idx] = None;
                            for g in &groups {
                                g.members.lock().unwrap().remove(&u.idx);
                            }
                        }
                    }
                    _ => read_one(&ctx, phase, "incr_get_user", &u).await,
                }
            }
        }
    })
    .await;
    ctx.rec.end_phase(phase, t);
}

/// Entra-style paging over every user: `startIndex` = 1, 1+count, …, `--page-rounds` times.
async fn phase_paging(ctx: &Arc<Ctx>) {
    let phase = "paging";
    let total = ctx.live_users().len();
    let pages = total.div_ceil(ctx.o.page_size);
    let jobs = pages * ctx.o.page_rounds;
    if jobs == 0 {
        return;
    }
    let t = Instant::now();
    let deadline = ctx.deadline(ctx.o.max_phase_secs);
    let next = Arc::new(AtomicUsize::new(0));
    run_workers(ctx.o.concurrency, |_| {
        let (ctx, next) = (ctx.clone(), next.clone());
        async move {
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= jobs || Instant::now() > deadline {
                    break;
                }
                let start = (j % pages) * ctx.o.page_size + 1;
                let path = format!("/Users?startIndex={start}&count={}", ctx.o.page_size);
                let r = ctx.scim.req(&ctx.rec, phase, "list_users_page", Method::GET, &path, None).await;
                if r.ok() {
                    let got = r.body["Resources"].as_array().map(Vec::len).unwrap_or(0);
                    if got == 0 || got > ctx.o.page_size {
                        ctx.rec.mark_error(phase, "list_users_page", json!({"request": path, "unexpected": format!("{got} resources in the page")}));
                    }
                }
            }
        }
    })
    .await;
    ctx.rec.end_phase(phase, t);
}

/// A full walk of every user, one page at a time as Entra's account discovery does: by `startIndex`
/// (1, 1+count, …) or by cursor (RFC 9865). Checks that every user comes exactly once, in id order, and
/// records the latency and capacity of the first and the last [`WALK_EDGE`] pages and of the whole walk.
async fn phase_walk(ctx: &Arc<Ctx>, cursor: bool) {
    let (phase, op) = if cursor {
        ("walk_cursor", "walk_cursor_page")
    } else {
        ("walk_index", "walk_index_page")
    };
    let count = ctx.o.page_size;
    let t = Instant::now();
    let deadline = ctx.deadline(ctx.o.max_phase_secs);
    let (mut pages, mut seen, mut last_id) = (
        Vec::<(u32, Option<u32>, Option<f64>)>::new(),
        0usize,
        String::new(),
    );
    let mut next = String::new();
    let mut start = 1usize;
    let mut complete = false;
    while Instant::now() < deadline {
        let path = if cursor {
            format!("/Users?count={count}&cursor={}", enc(&next))
        } else {
            format!("/Users?startIndex={start}&count={count}")
        };
        let r = ctx
            .scim
            .req(&ctx.rec, phase, op, Method::GET, &path, None)
            .await;
        if !r.ok() {
            break;
        }
        let ids: Vec<&str> = r.body["Resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["id"].as_str())
            .collect();
        if ids.is_empty() {
            complete = true;
            break;
        }
        pages.push((r.us, r.usage.calls, r.usage.capacity.map(|c| c.0)));
        for id in ids {
            if id <= last_id.as_str() {
                ctx.rec.mark_error(phase, op, json!({"request": path, "unexpected": "ids not in ascending order across the walk"}));
            }
            last_id = id.to_string();
            seen += 1;
        }
        start += count;
        match (cursor, r.body["nextCursor"].as_str()) {
            (true, Some(c)) => next = c.to_string(),
            (true, None) => {
                complete = true;
                break;
            }
            (false, _) => {}
        }
    }
    ctx.rec.end_phase(phase, t);
    let expected = ctx.live_users().len();
    if !complete || seen < expected {
        ctx.rec.mark_error(phase, op, json!({"unexpected": format!("walk saw {seen} users, at least {expected} expected (complete: {complete})")}));
    }
    let edge = |ps: &[(u32, Option<u32>, Option<f64>)]| {
        let n = ps.len().max(1) as f64;
        json!({"pages": ps.len(), "mean_ms": r2(ps.iter().map(|p| p.0 as f64).sum::<f64>() / n / 1000.0),
               "calls": ps.first().and_then(|p| p.1), "read_units": ps.first().and_then(|p| p.2).map(r2)})
    };
    let k = WALK_EDGE.min(pages.len());
    ctx.walks.lock().unwrap().push(json!({
        "walk": if cursor { "cursor" } else { "startIndex" }, "count": count, "users": seen, "pages": pages.len(),
        "wall_secs": r2(t.elapsed().as_secs_f64()), "read_units": r2(pages.iter().filter_map(|p| p.2).sum()),
        "first_page": edge(&pages[..k]), "last_page": edge(&pages[pages.len() - k..]),
        "first_page_ms": pages.first().map(|p| r2(p.0 as f64 / 1000.0)), "last_page_ms": pages.last().map(|p| r2(p.0 as f64 / 1000.0)),
        "last_page_read_units": pages.last().and_then(|p| p.2).map(r2), "last_page_calls": pages.last().and_then(|p| p.1),
    }));
}

/// Pages at each end of a walk whose mean latency is compared (one page alone is noise).
const WALK_EDGE: usize = 10;

/// Shapes Entra sends that RFC-strict servers may reject: a few requests each, one at a time.
async fn phase_quirks(ctx: &Arc<Ctx>) {
    let phase = "quirks";
    let n = ctx.o.quirks;
    let live = ctx.live_users();
    if n == 0 || live.len() < 2 {
        return;
    }
    let t = Instant::now();
    let deadline = ctx.deadline(60);
    let groups: Vec<Arc<GroupInfo>> = ctx.groups.lock().unwrap().clone();
    let rt_ms = ENTERPRISE;
    for q in 0..n {
        if Instant::now() > deadline {
            break;
        }
        let u = &live[q % live.len()];
        let other = &live[(q + 1) % live.len()];
        // Entra's default member removal: path "members" with a value array (not a value filter).
        if let Some(g) = groups.first() {
            let m = g.members.lock().unwrap().iter().next().copied();
            if let Some(idx) = m {
                if let Some(mu) = live.iter().find(|x| x.idx == idx) {
                    let body = patch(
                        json!([{"op": "Remove", "path": "members", "value": [{"value": mu.id}]}]),
                    );
                    let r = ctx
                        .scim
                        .req(
                            &ctx.rec,
                            phase,
                            "quirk_remove_members_value_array",
                            Method::PATCH,
                            &format!("/Groups/{}", g.id),
                            Some(&body),
                        )
                        .await;
                    if r.ok() {
                        g.members.lock().unwrap().remove(&idx);
                    }
                }
            }
        }
        // Add to a value path whose element does not exist yet (Entra's phone numbers).
        let body = patch(
            json!([{"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": format!("+1 555 01{q:02}")}]),
        );
        let uq = &live[(live.len() / 2 + q) % live.len()];
        ctx.scim
            .req(
                &ctx.rec,
                phase,
                "quirk_add_absent_value_path",
                Method::PATCH,
                &format!("/Users/{}", uq.id),
                Some(&body),
            )
            .await;
        // Pathless replace with dotted and URN-qualified keys.
        let body = patch(
            json!([{"op": "Replace", "value": {"name.givenName": format!("Q{q}"), format!("{rt_ms}:employeeNumber"): format!("Q{q:06}")}}]),
        );
        ctx.scim
            .req(
                &ctx.rec,
                phase,
                "quirk_pathless_dotted_urn",
                Method::PATCH,
                &format!("/Users/{}", u.id),
                Some(&body),
            )
            .await;
        // Manager as a bare id string.
        let body =
            patch(json!([{"op": "Add", "path": format!("{rt_ms}:manager"), "value": other.id}]));
        ctx.scim
            .req(
                &ctx.rec,
                phase,
                "quirk_manager_as_string",
                Method::PATCH,
                &format!("/Users/{}", u.id),
                Some(&body),
            )
            .await;
        // Unquoted externalId filter.
        let path = format!(
            "/Users?filter={}",
            enc(&format!("externalId eq {}", external_id(&ctx.run, u.idx)))
        );
        let r = ctx
            .scim
            .req(
                &ctx.rec,
                phase,
                "quirk_filter_unquoted",
                Method::GET,
                &path,
                None,
            )
            .await;
        if r.ok() && r.body["totalResults"].as_u64() != Some(1) {
            ctx.rec.mark_error(
                phase,
                "quirk_filter_unquoted",
                json!({"request": path, "unexpected": r.body}),
            );
        }
    }
    ctx.rec.end_phase(phase, t);
}

// ---------------------------------------------------------------------------------------------
// Scale scenario

async fn scale_groups(ctx: &Arc<Ctx>) -> Vec<(usize, String)> {
    let phase = "load_groups";
    let t = Instant::now();
    let deadline = ctx.deadline(ctx.o.max_phase_secs);
    let users = Arc::new(ctx.users.lock().unwrap().clone());
    let out = Arc::new(Mutex::new(Vec::new()));
    let sizes = ctx.o.scale_group_sizes.clone();
    let n_users = ctx.o.users;
    run_workers(sizes.len(), |gi| {
        let (ctx, users, out) = (ctx.clone(), users.clone(), out.clone());
        let size = sizes[gi].min(n_users);
        async move {
            let r = ctx
                .scim
                .req(
                    &ctx.rec,
                    phase,
                    "load_create_group",
                    Method::POST,
                    "/Groups",
                    Some(&group_body(&ctx.run, gi)),
                )
                .await;
            let Some(gid) = r.body["id"].as_str().filter(|_| r.ok()).map(str::to_string) else {
                return;
            };
            let ids: Vec<&str> = users[..size]
                .iter()
                .flatten()
                .map(|u| u.id.as_str())
                .collect();
            for chunk in ids.chunks(ctx.o.load_member_batch) {
                if Instant::now() > deadline {
                    eprintln!("  group of {size}: time limit reached while loading members");
                    break;
                }
                ctx.scim
                    .req(
                        &ctx.rec,
                        phase,
                        "load_add_members",
                        Method::PATCH,
                        &format!("/Groups/{gid}"),
                        Some(&add_members(chunk)),
                    )
                    .await;
            }
            out.lock().unwrap().push((gi, gid));
        }
    })
    .await;
    ctx.rec.end_phase(phase, t);
    let mut v: Vec<(usize, String)> = out
        .lock()
        .unwrap()
        .iter()
        .map(|(gi, id)| (sizes[*gi].min(n_users), id.clone()))
        .collect();
    v.sort();
    v
}

async fn scale_patch(ctx: &Arc<Ctx>, users: Arc<Vec<UserInfo>>) {
    let phase = "scale_patch_user";
    let t = Instant::now();
    let deadline = ctx.deadline(ctx.o.read_secs);
    let c = ctx.o.concurrency;
    run_workers(c, |w| {
        let ctx = ctx.clone();
        // Each worker PATCHes only its own users, so no two requests race on one user.
        let mine: Vec<UserInfo> = users.iter().filter(|u| u.idx % c == w).cloned().collect();
        async move {
            let mut rng = Rng::new(w as u64 + 555);
            for n in 0..100_000_000u64 {
                if Instant::now() > deadline || mine.is_empty() {
                    break;
                }
                let u = &mine[rng.below(mine.len())];
                let body = user_update(u.idx, n, &ctx.run);
                ctx.scim
                    .req(
                        &ctx.rec,
                        phase,
                        "scale_patch_user",
                        Method::PATCH,
                        &format!("/Users/{}", u.id),
                        Some(&body),
                    )
                    .await;
            }
        }
    })
    .await;
    ctx.rec.end_phase(phase, t);
}

/// Add (then remove) one spare user to each group, interleaving the group sizes, one request at a time.
async fn scale_member_add(ctx: &Arc<Ctx>, groups: &[(usize, String)], spares: &[UserInfo]) {
    let phase = "member_add";
    if spares.is_empty() || groups.is_empty() {
        return;
    }
    let t = Instant::now();
    let deadline = ctx.deadline(ctx.o.max_phase_secs);
    for s in 0..ctx.o.samples {
        if Instant::now() > deadline {
            break;
        }
        let u = &spares[s % spares.len()];
        for (size, gid) in groups {
            let add = format!("member_add_{size}");
            let rem = format!("member_remove_{size}");
            ctx.scim
                .req(
                    &ctx.rec,
                    phase,
                    &add,
                    Method::PATCH,
                    &format!("/Groups/{gid}"),
                    Some(&add_members(&[&u.id])),
                )
                .await;
            ctx.scim
                .req(
                    &ctx.rec,
                    phase,
                    &rem,
                    Method::PATCH,
                    &format!("/Groups/{gid}"),
                    Some(&remove_member(&u.id)),
                )
                .await;
        }
    }
    ctx.rec.end_phase(phase, t);
}

// ---------------------------------------------------------------------------------------------
// Report

fn report(ctx: &Ctx) -> Value {
    let phases: Vec<(String, f64)> = ctx.rec.phases.lock().unwrap().clone();
    let wall = |p: &str| {
        phases
            .iter()
            .find(|(n, _)| n == p)
            .map(|(_, s)| *s)
            .unwrap_or(0.0)
    };
    let mut ops_json = Vec::new();
    let mut ops = ctx.rec.ops.lock().unwrap();
    for (name, r) in ops.iter_mut() {
        r.lat_us.sort_unstable();
        let n = r.lat_us.len();
        let secs = wall(&r.phase);
        let calls = if r.calls.is_empty() {
            Value::Null
        } else {
            let sum: u64 = r.calls.iter().map(|&c| c as u64).sum();
            json!({"min": r.calls.iter().min(), "mean": r2(sum as f64 / r.calls.len() as f64), "max": r.calls.iter().max()})
        };
        let capacity = if r.capacity.is_empty() {
            Value::Null
        } else {
            let n = r.capacity.len() as f64;
            let (rs, ws): (f64, f64) = r
                .capacity
                .iter()
                .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
            let max = |f: fn(&(f64, f64)) -> f64| r.capacity.iter().map(f).fold(0.0, f64::max);
            json!({"read_mean": r2(rs / n), "read_max": max(|c| c.0), "write_mean": r2(ws / n), "write_max": max(|c| c.1)})
        };
        ops_json.push(json!({
            "op": name, "phase": r.phase, "count": n, "errors": r.errors,
            "ops_per_sec": if secs > 0.0 { r2(n as f64 / secs) } else { 0.0 },
            "p50_ms": r2(pct(&r.lat_us, 0.50)), "p95_ms": r2(pct(&r.lat_us, 0.95)), "p99_ms": r2(pct(&r.lat_us, 0.99)),
            "max_ms": r2(r.lat_us.last().copied().unwrap_or(0) as f64 / 1000.0),
            "mean_ms": r2(if n > 0 { r.lat_us.iter().map(|&x| x as f64).sum::<f64>() / n as f64 / 1000.0 } else { 0.0 }),
            "dynamodb_calls": calls, "capacity_units": capacity, "statuses": r.statuses, "first_error": r.first_error,
        }));
    }
    let mut phases_json = Vec::new();
    let (mut w_req, mut w_err, mut w_secs) = (0u64, 0u64, 0.0f64);
    for (p, secs) in &phases {
        let (req, err) = ops
            .iter()
            .filter(|(_, r)| &r.phase == p)
            .fold((0u64, 0u64), |(a, b), (_, r)| {
                (a + r.lat_us.len() as u64, b + r.errors)
            });
        let workload = !(p.starts_with("ceiling") || p == "quirks");
        if workload {
            w_req += req;
            w_err += err;
            w_secs += secs;
        }
        phases_json.push(json!({"phase": p, "wall_secs": r2(*secs), "requests": req, "errors": err,
            "requests_per_sec": if *secs > 0.0 { r2(req as f64 / secs) } else { 0.0 }, "in_workload_total": workload}));
    }
    let mut out = json!({
        "label": ctx.o.label, "base_url": ctx.o.base_url,
        "scenario": match ctx.o.scenario { Scenario::Scale => "scale", Scenario::Walk => "walk", Scenario::Default => "default" },
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "elapsed_secs": r2(ctx.started.elapsed().as_secs_f64()),
        "config": {"users": ctx.o.users, "groups": ctx.o.groups, "group_size": ctx.o.group_size, "member_batch": ctx.o.member_batch,
                   "concurrency": ctx.o.concurrency, "duration_secs": ctx.o.duration_secs, "read_secs": ctx.o.read_secs,
                   "page_size": ctx.o.page_size, "page_rounds": ctx.o.page_rounds, "load_concurrency": ctx.o.load_concurrency,
                   "scale_group_sizes": ctx.o.scale_group_sizes, "samples": ctx.o.samples, "ceiling": ctx.o.ceiling},
        "phases": phases_json,
        "workload_total": {"requests": w_req, "errors": w_err, "wall_secs": r2(w_secs), "requests_per_sec": if w_secs > 0.0 { r2(w_req as f64 / w_secs) } else { 0.0 }},
        "ops": ops_json,
    });
    let walks = ctx.walks.lock().unwrap().clone();
    if !walks.is_empty() {
        out["walks"] = Value::Array(walks);
    }
    if let Some(pid) = ctx.o.server_pid {
        out["server_memory"] = proc_memory(pid);
    }
    out
}

fn proc_memory(pid: u32) -> Value {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return json!({"error": format!("cannot read /proc/{pid}/status")});
    };
    let kb = |key: &str| {
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    json!({"pid": pid, "vm_hwm_mb": kb("VmHWM:").map(|k| r2(k as f64 / 1024.0)), "vm_rss_mb": kb("VmRSS:").map(|k| r2(k as f64 / 1024.0))})
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn op_of<'a>(rep: &'a Value, name: &str) -> Option<&'a Value> {
    rep["ops"].as_array()?.iter().find(|o| o["op"] == name)
}

fn print_table(rep: &Value) {
    println!();
    println!(
        "== {} ({} scenario) ==",
        rep["label"].as_str().unwrap_or(""),
        rep["scenario"].as_str().unwrap_or("")
    );
    println!(
        "{:<34} {:<18} {:>7} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>6}",
        "operation",
        "phase",
        "count",
        "errors",
        "ops/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "calls",
        "RCU",
        "WCU"
    );
    for o in rep["ops"].as_array().into_iter().flatten() {
        let calls = match o["dynamodb_calls"]["mean"].as_f64() {
            Some(m) if o["dynamodb_calls"]["min"] == o["dynamodb_calls"]["max"] => format!("{m}"),
            Some(_) => format!(
                "{}-{}",
                o["dynamodb_calls"]["min"], o["dynamodb_calls"]["max"]
            ),
            None => "-".into(),
        };
        let units = |k: &str| {
            o["capacity_units"][k]
                .as_f64()
                .map_or_else(|| "-".to_string(), |u| format!("{u}"))
        };
        println!(
            "{:<34} {:<18} {:>7} {:>6} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>6} {:>6}",
            o["op"].as_str().unwrap_or(""),
            o["phase"].as_str().unwrap_or(""),
            o["count"].as_u64().unwrap_or(0),
            o["errors"].as_u64().unwrap_or(0),
            f(&o["ops_per_sec"]),
            f(&o["p50_ms"]),
            f(&o["p95_ms"]),
            f(&o["p99_ms"]),
            f(&o["max_ms"]),
            calls,
            units("read_mean"),
            units("write_mean")
        );
    }
    println!(
        "{:<34} {:>9} {:>9} {:>7} {:>10}",
        "phase", "wall s", "requests", "errors", "req/s"
    );
    for p in rep["phases"].as_array().into_iter().flatten() {
        println!(
            "{:<34} {:>9.1} {:>9} {:>7} {:>10.1}",
            p["phase"].as_str().unwrap_or(""),
            f(&p["wall_secs"]),
            p["requests"].as_u64().unwrap_or(0),
            p["errors"].as_u64().unwrap_or(0),
            f(&p["requests_per_sec"])
        );
    }
    let t = &rep["workload_total"];
    println!(
        "{:<34} {:>9.1} {:>9} {:>7} {:>10.1}",
        "WORKLOAD TOTAL (no ceiling/quirks)",
        f(&t["wall_secs"]),
        t["requests"].as_u64().unwrap_or(0),
        t["errors"].as_u64().unwrap_or(0),
        f(&t["requests_per_sec"])
    );
    for (server, engine, label) in [
        ("get_user", "ceiling_get_item", "GET by id vs GetItem"),
        (
            "filter_user",
            "ceiling_gsi_query",
            "userName eq vs GSI Query",
        ),
        ("scale_get_user", "ceiling_get_item", "GET by id vs GetItem"),
        (
            "scale_filter_user",
            "ceiling_gsi_query",
            "userName eq vs GSI Query",
        ),
    ] {
        if let (Some(s), Some(e)) = (op_of(rep, server), op_of(rep, engine)) {
            let pct = 100.0 * f(&s["ops_per_sec"]) / f(&e["ops_per_sec"]).max(1e-9);
            println!(
                "ceiling: {label}: {:.0} / {:.0} ops/s = {pct:.0} % of the engine (target >= 70 %)",
                f(&s["ops_per_sec"]),
                f(&e["ops_per_sec"])
            );
        }
    }
    if let (Some(a), Some(b)) = (
        op_of(rep, "member_add_10"),
        rep["ops"].as_array().and_then(|v| {
            v.iter().rfind(|o| {
                o["op"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("member_add_"))
            })
        }),
    ) {
        println!(
            "member add: {} p50 {:.2} ms mean {:.2} ms vs member_add_10 p50 {:.2} ms mean {:.2} ms: ratio {:.2} (p50), {:.2} (mean) (target <= 1.2)",
            b["op"].as_str().unwrap_or(""), f(&b["p50_ms"]), f(&b["mean_ms"]), f(&a["p50_ms"]), f(&a["mean_ms"]),
            f(&b["p50_ms"]) / f(&a["p50_ms"]).max(1e-9), f(&b["mean_ms"]) / f(&a["mean_ms"]).max(1e-9)
        );
    }
    for w in rep["walks"].as_array().into_iter().flatten() {
        let (fp, lp) = (&w["first_page"], &w["last_page"]);
        println!(
            "walk {}: {} users in {} pages of {} in {:.1} s, {} RCU in all; first {} pages: {:.2} ms {} RCU {} calls a page; last {}: {:.2} ms {} RCU {} calls; ratio last/first: {:.2} (latency), {:.2} (RCU) (target <= 1.5)",
            w["walk"].as_str().unwrap_or(""), w["users"], w["pages"], w["count"], f(&w["wall_secs"]), w["read_units"],
            fp["pages"], f(&fp["mean_ms"]), fp["read_units"], fp["calls"], lp["pages"], f(&lp["mean_ms"]), lp["read_units"], lp["calls"],
            f(&lp["mean_ms"]) / f(&fp["mean_ms"]).max(1e-9), f(&lp["read_units"]) / f(&fp["read_units"]).max(1e-9)
        );
    }
    if !rep["server_memory"].is_null() {
        println!(
            "server memory: peak RSS (VmHWM) {} MB, RSS now {} MB",
            rep["server_memory"]["vm_hwm_mb"], rep["server_memory"]["vm_rss_mb"]
        );
    }
    let rejected: Vec<String> = rep["ops"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["errors"].as_u64().unwrap_or(0) > 0)
        .map(|o| {
            format!(
                "{} ({} of {}; statuses {})",
                o["op"].as_str().unwrap_or(""),
                o["errors"],
                o["count"],
                o["statuses"]
            )
        })
        .collect();
    if !rejected.is_empty() {
        println!("operations with errors: {}", rejected.join("; "));
        for o in rep["ops"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| !o["first_error"].is_null())
        {
            println!(
                "  first error of {}: {}",
                o["op"].as_str().unwrap_or(""),
                o["first_error"]
            );
        }
    }
}

fn compare(a_file: &str, b_file: &str) -> Result<(), String> {
    let read = |p: &str| -> Result<Value, String> {
        serde_json::from_str(&std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?)
            .map_err(|e| format!("{p}: {e}"))
    };
    let (a, b) = (read(a_file)?, read(b_file)?);
    let (an, bn) = (
        a["label"].as_str().unwrap_or("A"),
        b["label"].as_str().unwrap_or("B"),
    );
    println!();
    println!("== ratios: {an} / {bn} (ops/s: higher is better for {an}; p99: lower is better for {an}) ==");
    println!(
        "{:<32} {:>10} {:>10} {:>8} {:>9} {:>9} {:>8} {:>10}",
        "operation", "ops/s A", "ops/s B", "A/B", "p99 A", "p99 B", "A/B", "errors B"
    );
    for o in a["ops"].as_array().into_iter().flatten() {
        let name = o["op"].as_str().unwrap_or("");
        let Some(t) = op_of(&b, name) else { continue };
        let ratio = |x: f64, y: f64| {
            if y > 0.0 {
                format!("{:.2}", x / y)
            } else {
                "-".into()
            }
        };
        println!(
            "{:<32} {:>10.1} {:>10.1} {:>8} {:>9.2} {:>9.2} {:>8} {:>10}",
            name,
            f(&o["ops_per_sec"]),
            f(&t["ops_per_sec"]),
            ratio(f(&o["ops_per_sec"]), f(&t["ops_per_sec"])),
            f(&o["p99_ms"]),
            f(&t["p99_ms"]),
            ratio(f(&o["p99_ms"]), f(&t["p99_ms"])),
            format!("{}/{}", t["errors"], t["count"])
        );
    }
    let (ta, tb) = (&a["workload_total"], &b["workload_total"]);
    let r = f(&ta["requests_per_sec"]) / f(&tb["requests_per_sec"]).max(1e-9);
    println!(
        "WORKLOAD TOTAL: {an} {:.1} req/s ({:.1} s), {bn} {:.1} req/s ({:.1} s): ratio {r:.2} (target >= 8)",
        f(&ta["requests_per_sec"]), f(&ta["wall_secs"]), f(&tb["requests_per_sec"]), f(&tb["wall_secs"])
    );
    for p in a["phases"].as_array().into_iter().flatten() {
        let name = p["phase"].as_str().unwrap_or("");
        if let Some(q) = b["phases"]
            .as_array()
            .and_then(|v| v.iter().find(|x| x["phase"] == p["phase"]))
        {
            let (x, y) = (f(&p["requests_per_sec"]), f(&q["requests_per_sec"]));
            if y > 0.0 {
                println!(
                    "  phase {name:<20} {x:>9.1} vs {y:>9.1} req/s: ratio {:.2}",
                    x / y
                );
            }
        }
    }
    let rejected: Vec<String> = b["ops"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["errors"].as_u64().unwrap_or(0) > 0)
        .map(|o| {
            format!(
                "{} (statuses {})",
                o["op"].as_str().unwrap_or(""),
                o["statuses"]
            )
        })
        .collect();
    println!(
        "{bn} rejected or got wrong: {}",
        if rejected.is_empty() {
            "nothing".into()
        } else {
            rejected.join("; ")
        }
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{HELP}");
        return;
    }
    if args[0] == "compare" {
        if args.len() != 3 {
            eprintln!("usage: scim-bench compare OURS.json THEIRS.json");
            std::process::exit(2);
        }
        if let Err(e) = compare(&args[1], &args[2]) {
            eprintln!("scim-bench: {e}");
            std::process::exit(1);
        }
        return;
    }
    let o = match parse_opts(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("scim-bench: {e}");
            std::process::exit(2);
        }
    };
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(o.concurrency.max(o.load_concurrency) * 2)
        .timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()
        .expect("http client");
    let run = format!(
        "{:06x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            & 0xff_ffff
    );
    let total_users = o.users
        + if o.scenario == Scenario::Scale {
            SPARE_USERS
        } else {
            0
        };
    let ctx = Arc::new(Ctx {
        scim: Scim {
            http,
            base: o.base_url.clone(),
            auth: format!("Bearer {}", o.token),
        },
        rec: Recorder::default(),
        users: Mutex::new(vec![None; total_users]),
        groups: Mutex::new(Vec::new()),
        o: o.clone(),
        run,
        started: Instant::now(),
        walks: Mutex::new(Vec::new()),
    });
    eprintln!(
        "scim-bench: {} at {} ({:?} scenario, run {})",
        o.label, o.base_url, o.scenario, ctx.run
    );
    // One request first: a wrong URL or token is reported before any load.
    let probe = ctx
        .scim
        .http
        .get(format!("{}/ServiceProviderConfig", o.base_url))
        .header("Authorization", &ctx.scim.auth)
        .send()
        .await;
    match probe {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            eprintln!(
                "scim-bench: GET /ServiceProviderConfig answered {}; check --base-url and --token",
                r.status()
            );
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("scim-bench: cannot reach {}: {e}", o.base_url);
            std::process::exit(1);
        }
    }
    match o.scenario {
        Scenario::Default => {
            phase_initial_users(&ctx, "initial_users", o.users, o.concurrency, true).await;
            phase_groups(&ctx).await;
            let users = Arc::new(ctx.live_users());
            phase_reads(
                &ctx,
                "read_get_user",
                "get_user",
                o.read_secs,
                users.clone(),
            )
            .await;
            phase_reads(
                &ctx,
                "read_filter_user",
                "filter_user",
                o.read_secs,
                users.clone(),
            )
            .await;
            phase_ceiling(&ctx, users).await;
            phase_incremental(&ctx).await;
            phase_paging(&ctx).await;
            phase_quirks(&ctx).await;
        }
        Scenario::Scale => {
            phase_initial_users(&ctx, "load_users", total_users, o.load_concurrency, false).await;
            let all = ctx.live_users();
            let (main, spares): (Vec<UserInfo>, Vec<UserInfo>) =
                all.into_iter().partition(|u| u.idx < o.users);
            eprintln!("  loaded {} users (+{} spare)", main.len(), spares.len());
            let groups = scale_groups(&ctx).await;
            let users = Arc::new(main);
            phase_reads(
                &ctx,
                "scale_get_user",
                "scale_get_user",
                o.read_secs,
                users.clone(),
            )
            .await;
            phase_reads(
                &ctx,
                "scale_filter_user",
                "scale_filter_user",
                o.read_secs,
                users.clone(),
            )
            .await;
            phase_ceiling(&ctx, users.clone()).await;
            phase_walk(&ctx, false).await;
            phase_walk(&ctx, true).await;
            scale_patch(&ctx, users).await;
            scale_member_add(&ctx, &groups, &spares).await;
        }
        Scenario::Walk => {
            phase_initial_users(&ctx, "load_users", o.users, o.load_concurrency, false).await;
            eprintln!("  loaded {} users", ctx.live_users().len());
            phase_walk(&ctx, false).await;
            phase_walk(&ctx, true).await;
        }
    }
    let rep = report(&ctx);
    print_table(&rep);
    if let Some(path) = &o.json {
        if let Err(e) = std::fs::write(path, serde_json::to_string_pretty(&rep).unwrap_or_default())
        {
            eprintln!("scim-bench: cannot write {path}: {e}");
            std::process::exit(1);
        }
        eprintln!("scim-bench: report written to {path}");
    }
}
