//! Options: the command line (`--help`), the scenarios, the loopback-only check of every URL.

use reqwest::Url;
use std::collections::BTreeMap;

pub(crate) const HELP: &str = "scim-bench: Entra-shaped SCIM load against a base URL on this machine

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

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scenario {
    Default,
    Scale,
    /// Load users, then only the full walks (index and cursor).
    Walk,
}

#[derive(Clone, Debug)]
pub(crate) struct Opts {
    pub(crate) base_url: String,
    pub(crate) token: String,
    pub(crate) label: String,
    pub(crate) scenario: Scenario,
    pub(crate) users: usize,
    pub(crate) groups: usize,
    pub(crate) group_size: usize,
    pub(crate) member_batch: usize,
    pub(crate) concurrency: usize,
    pub(crate) duration_secs: u64,
    pub(crate) read_secs: u64,
    pub(crate) page_size: usize,
    pub(crate) page_rounds: usize,
    pub(crate) quirks: usize,
    pub(crate) max_phase_secs: u64,
    pub(crate) ceiling: Option<String>,
    /// The engine's key (from --ceiling-data-dir), to sign the ceiling's calls.
    pub(crate) ceiling_key: Option<scim_local::engine::engine_door::EngineKey>,
    pub(crate) ceiling_table: String,
    pub(crate) ceiling_tenant: String,
    pub(crate) server_pid: Option<u32>,
    pub(crate) json: Option<String>,
    pub(crate) load_concurrency: usize,
    pub(crate) load_member_batch: usize,
    pub(crate) scale_group_sizes: Vec<usize>,
    pub(crate) samples: usize,
}

pub(crate) fn parse_opts(args: &[String]) -> Result<Opts, String> {
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
        ceiling_key = Some(scim_local::engine::engine_door::EngineKey::read(
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
pub(crate) fn check_loopback(url: &str) -> Result<(), String> {
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
