//! `scim-bench`: an Entra-shaped SCIM workload over HTTP against any SCIM base URL and bearer token, with
//! latency percentiles and throughput per operation, and (optionally) the ceiling of the DynamoDB engine
//! behind it measured with the same SDK calls in the same run. See `docs/benchmark.md`.
//!
//! Loopback only: every URL it is given must name 127.0.0.0/8, ::1 or localhost; redirects are not
//! followed and proxies are not used, so no request leaves the machine. Every loop is bounded in count and
//! in time.
//!
//! One module per part of a run, in the order a run goes: the command line ([`opts`]), the client and what
//! it records ([`client`], [`record`], [`bodies`], [`state`]), the setup ([`seed`]), the measured phases
//! ([`reads`], [`ceiling`], [`incremental`], [`paging`], [`walk`], [`quirks`]; the scale scenario's own in
//! [`scale`]), and the [`report`].

mod bodies;
mod ceiling;
mod client;
mod incremental;
mod opts;
mod paging;
mod quirks;
mod reads;
mod record;
mod report;
mod scale;
mod seed;
mod state;
mod walk;

use crate::ceiling::phase_ceiling;
use crate::client::Scim;
use crate::incremental::phase_incremental;
use crate::opts::{parse_opts, Scenario, HELP};
use crate::paging::phase_paging;
use crate::quirks::phase_quirks;
use crate::reads::phase_reads;
use crate::record::Recorder;
use crate::report::{compare, print_table, report};
use crate::scale::{scale_groups, scale_member_add, scale_patch, SPARE_USERS};
use crate::seed::{phase_groups, phase_initial_users};
use crate::state::{Ctx, UserInfo};
use crate::walk::phase_walk;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
