//! `scim-bench-oauth`: what OAuth costs, against a running server on this machine (docs/benchmark.md,
//! "OAuth"): the token endpoint's latency (client secret by HTTP Basic, one request at a time), and a SCIM
//! request (`GET /Users?filter=userName eq "…"`, Entra's Test Connection) made with an OAuth access token
//! and with a static tenant token, alternately — their latencies and the DynamoDB calls each made (the
//! server must expose them: `SCIM_EXPOSE_CALL_COUNT=1`).
//!
//! Loopback only (127.0.0.0/8, ::1, localhost); no redirects, no proxy; every loop is bounded.

use std::time::{Duration, Instant};

const HELP: &str = "scim-bench-oauth: the token endpoint's latency, and a SCIM request with an OAuth access token vs a static token

USAGE
  scim-bench-oauth --origin URL --tenant T --client-id ID --client-secret SECRET --token TENANT_TOKEN [options]

  --origin URL        the server's origin, e.g. http://127.0.0.1:8080 (loopback only); the token endpoint is
                      URL/T/oauth2/token and the SCIM base URL URL/T/scim/v2 (T = default: URL/oauth2/token and
                      URL/scim/v2)
  --tenant T          the tenant (scim-admin tenant create T; client create T; token issue T)
  --client-id ID, --client-secret SECRET   from scim-admin client create T
  --token TOKEN       a static token of the same tenant (scim-admin token issue T), for the comparison
  --requests N        token requests, and SCIM requests of each kind (default 200)
  --json FILE         also write the figures as JSON

The server must run with SCIM_EXPOSE_CALL_COUNT=1 (the DynamoDB calls of each request).
";

struct Opts {
    origin: String,
    tenant: String,
    client_id: String,
    client_secret: String,
    token: String,
    requests: usize,
    json: Option<String>,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut kv = std::collections::BTreeMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let name = a
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {a}"))?;
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        if ![
            "origin",
            "tenant",
            "client-id",
            "client-secret",
            "token",
            "requests",
            "json",
        ]
        .contains(&name)
        {
            return Err(format!("unknown option --{name}; see --help"));
        }
        kv.insert(name.to_string(), value.clone());
    }
    let need = |k: &str| {
        kv.get(k)
            .cloned()
            .ok_or_else(|| format!("--{k} is required; see --help"))
    };
    let origin = need("origin")?.trim_end_matches('/').to_string();
    let url = reqwest::Url::parse(&origin).map_err(|e| format!("--origin: {e}"))?;
    let host = url.host_str().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!(
            "--origin {origin} is not a loopback address; this tool talks to this machine only"
        ));
    }
    Ok(Opts {
        origin,
        tenant: need("tenant")?,
        client_id: need("client-id")?,
        client_secret: need("client-secret")?,
        token: need("token")?,
        requests: kv
            .get("requests")
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("--requests wants a number, got {v}"))
            })
            .transpose()?
            .unwrap_or(200)
            .clamp(1, 100_000),
        json: kv.get("json").cloned(),
    })
}

/// Latencies (ms) and DynamoDB calls of one kind of request.
#[derive(Default)]
struct Sample {
    ms: Vec<f64>,
    calls: Vec<u32>,
}

impl Sample {
    fn add(&mut self, started: Instant, calls: Option<u32>) {
        self.ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if let Some(c) = calls {
            self.calls.push(c);
        }
    }

    fn summary(&self) -> serde_json::Value {
        let mut ms = self.ms.clone();
        ms.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| {
            ms.get(
                ((ms.len() as f64 * p).ceil() as usize)
                    .saturating_sub(1)
                    .min(ms.len().saturating_sub(1)),
            )
            .copied()
            .unwrap_or(0.0)
        };
        let mean = |v: &[f64]| {
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let calls: Vec<f64> = self.calls.iter().map(|c| f64::from(*c)).collect();
        serde_json::json!({
            "requests": ms.len(),
            "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99), "mean_ms": mean(&ms),
            "calls_mean": mean(&calls),
            "calls_min": self.calls.iter().min().copied().unwrap_or(0),
            "calls_max": self.calls.iter().max().copied().unwrap_or(0),
        })
    }
}

fn calls(r: &reqwest::Response) -> Option<u32> {
    r.headers()
        .get("x-scim-dynamodb-calls")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

async fn run(o: Opts) -> Result<serde_json::Value, String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let prefix = if o.tenant == "default" {
        String::new()
    } else {
        format!("/{}", o.tenant)
    };
    let token_url = format!("{}{prefix}/oauth2/token", o.origin);
    let scim = format!("{}{prefix}/scim/v2/Users?filter=userName%20eq%20%228f5b9e0e-3f6d-4a57-9d3b-1b7f0c7e9a21%22", o.origin);

    let mut token_sample = Sample::default();
    let mut access_token = String::new();
    for _ in 0..o.requests {
        let started = Instant::now();
        let r = client
            .post(&token_url)
            .basic_auth(&o.client_id, Some(&o.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=scim")
            .send()
            .await
            .map_err(|e| format!("token request: {e}"))?;
        let c = calls(&r);
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.map_err(|e| format!("token answer: {e}"))?;
        token_sample.add(started, c);
        if status != 200 {
            return Err(format!("the token endpoint answered {status}: {body}"));
        }
        access_token = body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }

    let (mut with_access, mut with_static) = (Sample::default(), Sample::default());
    for i in 0..o.requests * 2 {
        let (token, sample) = if i % 2 == 0 {
            (&access_token, &mut with_access)
        } else {
            (&o.token, &mut with_static)
        };
        let started = Instant::now();
        let r = client
            .get(&scim)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| format!("SCIM request: {e}"))?;
        let c = calls(&r);
        let status = r.status().as_u16();
        let _ = r.bytes().await;
        sample.add(started, c);
        if status != 200 {
            return Err(format!("the SCIM request answered {status}"));
        }
        if c.is_none() {
            return Err(
                "the server does not expose DynamoDB calls: start it with SCIM_EXPOSE_CALL_COUNT=1"
                    .into(),
            );
        }
    }
    Ok(serde_json::json!({
        "token_endpoint": token_sample.summary(),
        "scim_with_access_token": with_access.summary(),
        "scim_with_static_token": with_static.summary(),
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{HELP}");
        return;
    }
    let result = match parse(&args) {
        Ok(o) => {
            let json = o.json.clone();
            run(o).await.map(|r| (r, json))
        }
        Err(e) => Err(e),
    };
    match result {
        Ok((report, json)) => {
            println!(
                "{:<26} {:>8} {:>9} {:>9} {:>9} {:>9} {:>11}",
                "",
                "requests",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "mean ms",
                "DynamoDB calls (mean, min-max)"
            );
            for key in [
                "token_endpoint",
                "scim_with_access_token",
                "scim_with_static_token",
            ] {
                let s = &report[key];
                println!(
                    "{key:<26} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>6.2} ({}-{})",
                    s["requests"],
                    s["p50_ms"].as_f64().unwrap_or(0.0),
                    s["p95_ms"].as_f64().unwrap_or(0.0),
                    s["p99_ms"].as_f64().unwrap_or(0.0),
                    s["mean_ms"].as_f64().unwrap_or(0.0),
                    s["calls_mean"].as_f64().unwrap_or(0.0),
                    s["calls_min"],
                    s["calls_max"]
                );
            }
            if let Some(f) = json {
                if let Err(e) = std::fs::write(&f, report.to_string()) {
                    eprintln!("scim-bench-oauth: cannot write {f}: {e}");
                    std::process::exit(1);
                }
            }
        }
        Err(e) => {
            eprintln!("scim-bench-oauth: {e}");
            std::process::exit(1);
        }
    }
}
