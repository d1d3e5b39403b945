//! The engine's ceiling: the DynamoDB reads the store makes, sent straight to the engine.

use crate::client::{Rng, Usage};
use crate::state::{run_workers, Ctx, UserInfo};
use aws_sdk_dynamodb::types::AttributeValue as AV;
use scim_core::store::keys;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The engine's ceiling: GetItem by key (strongly consistent, as the store reads) and a GSI Query on
/// `gsi1`, each at `--concurrency` for `--read-secs`, with the SDK the server uses.
pub(crate) async fn phase_ceiling(ctx: &Arc<Ctx>, users: Arc<Vec<UserInfo>>) {
    let (Some(ep), Some(key)) = (ctx.o.ceiling.clone(), ctx.o.ceiling_key.clone()) else {
        return;
    };
    if users.is_empty() {
        return;
    }
    // A client of its own, signed with the engine's key (the store's traits have no raw GetItem or Query).
    let (key_id, secret) = key.credentials();
    let table = ctx.o.ceiling_table.clone();
    let client = aws_sdk_dynamodb::Client::from_conf(
        scim_core::store::dynamo::engine_sdk_config(&ep, Duration::from_secs(10), key_id, secret)
            .build(),
    );
    let store = Arc::new((client, table));
    for op in ["ceiling_get_item", "ceiling_gsi_query"] {
        let phase = op;
        let t = Instant::now();
        let deadline = ctx.deadline(ctx.o.read_secs);
        run_workers(ctx.o.concurrency, |w| {
            let (ctx, users, store) = (ctx.clone(), users.clone(), store.clone());
            async move {
                let rt = scim_core::schema::user_resource_type();
                let tenant = ctx.o.ceiling_tenant.clone();
                let mut rng = Rng::new(w as u64 + 99);
                for _ in 0..100_000_000u64 {
                    if Instant::now() > deadline {
                        break;
                    }
                    let u = &users[rng.below(users.len())];
                    let t0 = Instant::now();
                    let found = if op == "ceiling_get_item" {
                        store
                            .0
                            .get_item()
                            .table_name(&store.1)
                            .key(keys::PK, AV::S(keys::resource_pk(&tenant, rt)))
                            .key(keys::SK, AV::S(u.id.clone()))
                            .consistent_read(true)
                            .send()
                            .await
                            .map(|r| r.item.is_some() as usize)
                            .map_err(|e| format!("{e:?}"))
                    } else {
                        store
                            .0
                            .query()
                            .table_name(&store.1)
                            .index_name(keys::GSI1)
                            .key_condition_expression("#k = :k")
                            .expression_attribute_names("#k", keys::GSI1PK)
                            .expression_attribute_values(":k", AV::S(keys::gsi1pk(&tenant, rt, &u.name.to_lowercase())))
                            .send()
                            .await
                            .map(|r| r.items.map(|i| i.len()).unwrap_or(0))
                            .map_err(|e| format!("{e:?}"))
                    };
                    let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    match found {
                        Ok(1) => ctx.rec.record(phase, op, us, 200, Usage::default(), None),
                        Ok(n) => ctx.rec.record(phase, op, us, 200, Usage::default(), Some(json!({"request": op, "unexpected": format!("{n} items for user {}", u.id)}))),
                        Err(e) => ctx.rec.record(phase, op, us, 0, Usage::default(), Some(json!({"request": op, "error": e.chars().take(400).collect::<String>()}))),
                    }
                }
            }
        })
        .await;
        ctx.rec.end_phase(phase, t);
    }
}
