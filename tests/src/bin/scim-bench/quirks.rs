//! Entra's quirk probes: shapes RFC-strict servers may reject, a few requests each.

use crate::bodies::{external_id, patch, ENTERPRISE};
use crate::client::enc;
use crate::state::{Ctx, GroupInfo};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// Shapes Entra sends that RFC-strict servers may reject: a few requests each, one at a time.
pub(crate) async fn phase_quirks(ctx: &Arc<Ctx>) {
    let phase = "quirks";
    let n = ctx.o.quirks;
    let live = ctx.live_users();
    if n == 0 || live.len() < 2 {
        return;
    }
    let t = Instant::now();
    let deadline = ctx.deadline(60);
    let groups: Vec<Arc<GroupInfo>> = ctx.groups.lock().unwrap().clone();
    let rt_ms = ENTERPRISE;
    for q in 0..n {
        if Instant::now() > deadline {
            break;
        }
        let u = &live[q % live.len()];
        let other = &live[(q + 1) % live.len()];
        // Entra's default member removal: path "members" with a value array (not a value filter).
        if let Some(g) = groups.first() {
            let m = g.members.lock().unwrap().iter().next().copied();
            if let Some(idx) = m {
                if let Some(mu) = live.iter().find(|x| x.idx == idx) {
                    let body = patch(
                        json!([{"op": "Remove", "path": "members", "value": [{"value": mu.id}]}]),
                    );
                    let r = ctx
                        .scim
                        .req(
                            &ctx.rec,
                            phase,
                            "quirk_remove_members_value_array",
                            Method::PATCH,
                            &format!("/Groups/{}", g.id),
                            Some(&body),
                        )
                        .await;
                    if r.ok() {
                        g.members.lock().unwrap().remove(&idx);
                    }
                }
            }
        }
        // Add to a value path whose element does not exist yet (Entra's phone numbers).
        let body = patch(
            json!([{"op": "Add", "path": "phoneNumbers[type eq \"work\"].value", "value": format!("+1 555 01{q:02}")}]),
        );
        let uq = &live[(live.len() / 2 + q) % live.len()];
        ctx.scim
            .req(
                &ctx.rec,
                phase,
                "quirk_add_absent_value_path",
                Method::PATCH,
                &format!("/Users/{}", uq.id),
                Some(&body),
            )
            .await;
        // Pathless replace with dotted and URN-qualified keys.
        let body = patch(
            json!([{"op": "Replace", "value": {"name.givenName": format!("Q{q}"), format!("{rt_ms}:employeeNumber"): format!("Q{q:06}")}}]),
        );
        ctx.scim
            .req(
                &ctx.rec,
                phase,
                "quirk_pathless_dotted_urn",
                Method::PATCH,
                &format!("/Users/{}", u.id),
                Some(&body),
            )
            .await;
        // Manager as a bare id string.
        let body =
            patch(json!([{"op": "Add", "path": format!("{rt_ms}:manager"), "value": other.id}]));
        ctx.scim
            .req(
                &ctx.rec,
                phase,
                "quirk_manager_as_string",
                Method::PATCH,
                &format!("/Users/{}", u.id),
                Some(&body),
            )
            .await;
        // Unquoted externalId filter.
        let path = format!(
            "/Users?filter={}",
            enc(&format!("externalId eq {}", external_id(&ctx.run, u.idx)))
        );
        let r = ctx
            .scim
            .req(
                &ctx.rec,
                phase,
                "quirk_filter_unquoted",
                Method::GET,
                &path,
                None,
            )
            .await;
        if r.ok() && r.body["totalResults"].as_u64() != Some(1) {
            ctx.rec.mark_error(
                phase,
                "quirk_filter_unquoted",
                json!({"request": path, "unexpected": r.body}),
            );
        }
    }
    ctx.rec.end_phase(phase, t);
}
