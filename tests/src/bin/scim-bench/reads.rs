//! The read phases: one kind of read (GET by id, `userName eq` filter) alone, at full concurrency.

use crate::client::{enc, Rng};
use crate::state::{run_workers, Ctx, UserInfo};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// One kind of read alone, at full concurrency, for `secs`.
pub(crate) async fn phase_reads(
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

pub(crate) async fn read_one(ctx: &Ctx, phase: &str, op: &str, u: &UserInfo) {
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
