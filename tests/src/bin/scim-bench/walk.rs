//! The full walks over every user (by `startIndex`, by cursor), checked for completeness and order.

use crate::client::enc;
use crate::record::r2;
use crate::state::Ctx;
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// A full walk of every user, one page at a time as Entra's account discovery does: by `startIndex`
/// (1, 1+count, …) or by cursor (RFC 9865). Checks that every user comes exactly once, in id order, and
/// records the latency and capacity of the first and the last [`WALK_EDGE`] pages and of the whole walk.
pub(crate) async fn phase_walk(ctx: &Arc<Ctx>, cursor: bool) {
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
pub(crate) const WALK_EDGE: usize = 10;
