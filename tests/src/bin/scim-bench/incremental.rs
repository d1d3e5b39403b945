//! Entra's incremental cycles: user updates, disables, group member changes and reads, mixed.

use crate::bodies::{add_members, disable, remove_member, user_update};
use crate::client::Rng;
use crate::reads::read_one;
use crate::state::{run_workers, Ctx, GroupInfo, UserInfo};
use reqwest::Method;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Incremental cycles: each worker owns the users whose index ≡ worker (mod concurrency), so no two
/// requests touch one user at once (as Entra serialises per object); groups are shared.
pub(crate) async fn phase_incremental(ctx: &Arc<Ctx>) {
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
