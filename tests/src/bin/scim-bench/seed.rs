//! Setup: Entra's initial cycles, creating the users and groups (with members) later phases use.

use crate::bodies::{add_members, group_body, group_name, user_body, user_name};
use crate::client::enc;
use crate::state::{run_workers, Ctx, GroupInfo, UserInfo};
use reqwest::Method;
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Entra's initial cycle for users: look the user up by userName, then create it.
pub(crate) async fn phase_initial_users(
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
pub(crate) async fn phase_groups(ctx: &Arc<Ctx>) {
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
