//! The report: a run's JSON summary, its table on the terminal, and `compare` of two reports.

use crate::opts::Scenario;
use crate::record::{pct, r2};
use crate::state::Ctx;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn report(ctx: &Ctx) -> Value {
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

pub(crate) fn proc_memory(pid: u32) -> Value {
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

pub(crate) fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

pub(crate) fn op_of<'a>(rep: &'a Value, name: &str) -> Option<&'a Value> {
    rep["ops"].as_array()?.iter().find(|o| o["op"] == name)
}

pub(crate) fn print_table(rep: &Value) {
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

pub(crate) fn compare(a_file: &str, b_file: &str) -> Result<(), String> {
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
