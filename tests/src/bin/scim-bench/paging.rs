//! Entra-style paging over every user, `--page-rounds` times.

use crate::state::{run_workers, Ctx};
use reqwest::Method;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Entra-style paging over every user: `startIndex` = 1, 1+count, …, `--page-rounds` times.
pub(crate) async fn phase_paging(ctx: &Arc<Ctx>) {
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
