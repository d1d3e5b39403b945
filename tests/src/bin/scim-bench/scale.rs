//! The scale scenario's own phases: large groups, user PATCH, member adds across group sizes.

use crate::bodies::{add_members, group_body, remove_member, user_update};
use crate::client::Rng;
use crate::state::{run_workers, Ctx, UserInfo};
use reqwest::Method;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub(crate) const SPARE_USERS: usize = 64;

pub(crate) async fn scale_groups(ctx: &Arc<Ctx>) -> Vec<(usize, String)> {
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

pub(crate) async fn scale_patch(ctx: &Arc<Ctx>, users: Arc<Vec<UserInfo>>) {
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
pub(crate) async fn scale_member_add(
    ctx: &Arc<Ctx>,
    groups: &[(usize, String)],
    spares: &[UserInfo],
) {
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
