//! Resource operations: the SCIM rules between HTTP and the store. Handlers parse and answer; this
//! module decides. Writes are optimistic (read, change, conditional write) and retried on conflict,
//! unless the client pinned a version with `If-Match` (then a conflict is 412).

use crate::config::Limits;
use crate::error::{ScimError, ScimResult};
use crate::filter::Filter;
use crate::model::{self, StoredResource};
use crate::patch;
use crate::schema::ResourceType;
use crate::store::{ListPage, ListQuery, Store, StoreError};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

pub struct Service {
    pub store: Arc<dyn Store>,
    pub limits: Limits,
}

/// Does an `If-Match` / `If-None-Match` header value name this resource's current version?
/// Accepts `*`, a list, and weak or strong forms (`W/"3"`, `"3"`).
pub fn etag_matches(header: &str, res: &StoredResource) -> bool {
    let want = res.version.to_string();
    header.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/").trim_matches('"') == want)
}

impl Service {
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        Service { store, limits }
    }

    pub async fn create(&self, tenant: &str, rt: &'static ResourceType, body: Value) -> ScimResult<StoredResource> {
        let attrs = model::prepare_input(body, rt)?;
        let now = model::now_rfc3339();
        let res = StoredResource { id: model::new_id(), attrs, created: now.clone(), last_modified: now, version: 1 };
        let mut attempt = 0;
        loop {
            match self.store.create(tenant, rt, &res).await {
                Ok(()) => return Ok(res),
                Err(StoreError::Contention) if attempt + 1 < self.limits.write_attempts => {
                    attempt += 1;
                    backoff(attempt).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub async fn get(&self, tenant: &str, rt: &'static ResourceType, id: &str) -> ScimResult<StoredResource> {
        self.store.get(tenant, rt, id).await?.ok_or_else(|| not_found(rt, id))
    }

    pub async fn replace(&self, tenant: &str, rt: &'static ResourceType, id: &str, body: Value, if_match: Option<&str>) -> ScimResult<StoredResource> {
        let attrs = model::prepare_input(body, rt)?;
        self.modify(tenant, rt, id, if_match, |_| Ok(attrs.clone())).await
    }

    pub async fn patch(&self, tenant: &str, rt: &'static ResourceType, id: &str, body: &Value, if_match: Option<&str>) -> ScimResult<StoredResource> {
        let ops = patch::parse_ops(body, rt)?;
        if ops.len() > self.limits.max_patch_ops {
            return Err(ScimError::invalid_value(format!(
                "The PATCH request has {} operations; the limit is {}",
                ops.len(),
                self.limits.max_patch_ops
            )));
        }
        self.modify(tenant, rt, id, if_match, |old| {
            let mut attrs = old.attrs.clone();
            patch::apply(&mut attrs, &ops, rt)?;
            model::validate(&mut attrs, rt)?;
            Ok(attrs)
        })
        .await
    }

    /// Read, change with `f`, write conditionally on the version read; retry when another writer won.
    /// A change that leaves the attributes as they were writes nothing and keeps version and lastModified.
    async fn modify(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        id: &str,
        if_match: Option<&str>,
        f: impl Fn(&StoredResource) -> ScimResult<Map<String, Value>>,
    ) -> ScimResult<StoredResource> {
        let mut attempt = 0;
        loop {
            let old = self.get(tenant, rt, id).await?;
            if let Some(tag) = if_match {
                if !etag_matches(tag, &old) {
                    return Err(stale(rt, &old));
                }
            }
            let attrs = f(&old)?;
            if attrs == old.attrs {
                return Ok(old);
            }
            let new = StoredResource {
                id: old.id.clone(),
                attrs,
                created: old.created.clone(),
                last_modified: model::now_rfc3339(),
                version: old.version + 1,
            };
            match self.store.replace(tenant, rt, &old, &new).await {
                Ok(()) => return Ok(new),
                Err(StoreError::VersionConflict) if if_match.is_some() => return Err(stale(rt, &old)),
                Err(StoreError::VersionConflict | StoreError::Contention) if attempt + 1 < self.limits.write_attempts => {
                    attempt += 1;
                    backoff(attempt).await;
                }
                Err(StoreError::VersionConflict) => return Err(StoreError::Contention.into()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub async fn delete(&self, tenant: &str, rt: &'static ResourceType, id: &str, if_match: Option<&str>) -> ScimResult<()> {
        let mut attempt = 0;
        loop {
            let old = self.get(tenant, rt, id).await?;
            if let Some(tag) = if_match {
                if !etag_matches(tag, &old) {
                    return Err(stale(rt, &old));
                }
            }
            match self.store.delete(tenant, rt, &old).await {
                Ok(()) => return Ok(()),
                Err(StoreError::VersionConflict) if if_match.is_some() => return Err(stale(rt, &old)),
                Err(StoreError::VersionConflict | StoreError::Contention) if attempt + 1 < self.limits.write_attempts => {
                    attempt += 1;
                    backoff(attempt).await;
                }
                Err(StoreError::VersionConflict) => return Err(StoreError::Contention.into()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub async fn list(&self, tenant: &str, rt: &'static ResourceType, filter: Option<&Filter>, start_index: usize, count: usize) -> ScimResult<ListPage> {
        let q = ListQuery { filter, start_index, count, max_scan: self.limits.max_filter_scan };
        Ok(self.store.list(tenant, rt, q).await?)
    }
}

fn not_found(rt: &ResourceType, id: &str) -> ScimError {
    ScimError::not_found(format!("{} {id} not found", rt.name))
}

fn stale(rt: &ResourceType, current: &StoredResource) -> ScimError {
    ScimError::precondition_failed(format!(
        "The {} has changed: its current version is {}; read it again before changing it",
        rt.name,
        current.etag()
    ))
}

/// Jittered exponential backoff between optimistic write attempts (≈ 5 ms … 160 ms).
async fn backoff(attempt: u32) {
    let base = 5u64 << attempt.min(5);
    let jitter = rand::random_range(0..=base);
    tokio::time::sleep(Duration::from_millis(base / 2 + jitter)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_forms() {
        let r = StoredResource { id: "x".into(), attrs: Map::new(), created: String::new(), last_modified: String::new(), version: 3 };
        assert!(etag_matches("W/\"3\"", &r));
        assert!(etag_matches("\"3\"", &r));
        assert!(etag_matches("*", &r));
        assert!(etag_matches("W/\"1\", W/\"3\"", &r));
        assert!(!etag_matches("W/\"2\"", &r));
    }
}
