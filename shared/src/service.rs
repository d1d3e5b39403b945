//! Resource operations: the SCIM rules between HTTP and the store. Handlers parse and answer; this
//! module decides. Writes are optimistic (read, change, conditional write) and retried on conflict,
//! unless the client pinned a version with `If-Match` (then a conflict is 412).
//!
//! The public operations are exactly the ones HTTP calls — [`Service::create`], [`Service::get`],
//! [`Service::replace`], [`Service::patch`], [`Service::delete`], [`Service::list`], [`Service::members`] —
//! for every resource type. The private `*_document` steps write a resource's document alone; a Group's
//! members (items of their own) are planned and written beside them.

use crate::backoff::Backoff;
use crate::config::Limits;
use crate::error::{ScimError, ScimResult};
use crate::filter::Filter;
use crate::filter::{CompValue, CompareOp};
use crate::model::{self, StoredResource};
use crate::patch;
use crate::patch::members::{self, MemberPlan};
use crate::schema::{group_resource_type, user_resource_type, ResourceType};
use crate::store::{limits, ListPage, ListQuery, MemberStatus, PageBudget, Store, StoreError};
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
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/").trim_matches('"') == want)
}

impl Service {
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        Service { store, limits }
    }

    async fn create_document(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        body: Value,
    ) -> ScimResult<StoredResource> {
        let res = self.new_resource(tenant, rt, body)?;
        self.insert(tenant, rt, res).await
    }

    /// A resource made from a POST body, checked against every limit (nothing read or written yet).
    fn new_resource(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        body: Value,
    ) -> ScimResult<StoredResource> {
        let attrs = model::prepare_input(body, rt)?;
        let id = model::new_id();
        self.check_size(tenant, rt, &id, &[], &attrs)?;
        let now = model::now_rfc3339();
        Ok(StoredResource {
            id,
            attrs,
            created: now.clone(),
            last_modified: now,
            version: 1,
            ..Default::default()
        })
    }

    async fn insert(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        res: StoredResource,
    ) -> ScimResult<StoredResource> {
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

    pub async fn get(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        id: &str,
    ) -> ScimResult<StoredResource> {
        check_path_id(rt, id)?;
        self.store
            .get(tenant, rt, id)
            .await?
            .ok_or_else(|| not_found(rt, id))
    }

    async fn replace_document(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        id: &str,
        body: Value,
        if_match: Option<&str>,
    ) -> ScimResult<StoredResource> {
        let attrs = self.replacement(tenant, rt, id, body)?;
        self.modify(tenant, rt, id, if_match, |_| Ok(attrs.clone()))
            .await
    }

    /// The attributes of a PUT body, checked against every limit before anything is read. A user's group
    /// ids are not known yet: its item keeps room for them ([`limits::GROUPS_RESERVE_BYTES`]), and one
    /// whose groups outgrew that room is refused by DynamoDB itself, still a 400 (`StoreError::TooLarge`).
    fn replacement(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        id: &str,
        body: Value,
    ) -> ScimResult<Map<String, Value>> {
        check_path_id(rt, id)?;
        let attrs = model::prepare_input(body, rt)?;
        self.check_size(tenant, rt, id, &[], &attrs)?;
        Ok(attrs)
    }

    async fn patch_document(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> ScimResult<StoredResource> {
        let ops = patch::parse_ops(body, rt)?;
        self.check_op_count(ops.len())?;
        self.modify(tenant, rt, id, if_match, |old| {
            self.patched(tenant, rt, old, &ops)
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
            check_if_match(rt, if_match, &old)?;
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
                ..old.clone()
            };
            match self.store.replace(tenant, rt, &old, &new).await {
                Ok(()) => return Ok(new),
                Err(e) => {
                    self.retry_or_fail(e, rt, if_match, &old, &mut attempt)
                        .await?
                }
            }
        }
    }

    pub async fn delete(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        id: &str,
        if_match: Option<&str>,
    ) -> ScimResult<()> {
        let mut attempt = 0;
        loop {
            let old = self.get(tenant, rt, id).await?;
            check_if_match(rt, if_match, &old)?;
            match self.store.delete(tenant, rt, &old).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.retry_or_fail(e, rt, if_match, &old, &mut attempt)
                        .await?
                }
            }
        }
    }

    /// After a failed conditional write of `old`: wait and return Ok (retry) when another writer won and
    /// attempts remain; 412 when the client pinned the version; the store's error otherwise.
    async fn retry_or_fail(
        &self,
        e: StoreError,
        rt: &ResourceType,
        if_match: Option<&str>,
        old: &StoredResource,
        attempt: &mut u32,
    ) -> ScimResult<()> {
        match e {
            StoreError::VersionConflict if if_match.is_some() => Err(stale(rt, old)),
            StoreError::VersionConflict | StoreError::Contention
                if *attempt + 1 < self.limits.write_attempts =>
            {
                *attempt += 1;
                backoff(*attempt).await;
                Ok(())
            }
            StoreError::VersionConflict => Err(StoreError::Contention.into()),
            e => Err(e.into()),
        }
    }

    async fn list_documents(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        filter: Option<&Filter>,
        page: PageAt<'_>,
    ) -> ScimResult<ListPage> {
        let PageAt {
            start_index,
            count,
            after,
            budget,
        } = page;
        let max_scan = self.limits.max_filter_scan;
        let q = ListQuery {
            filter,
            start_index,
            count,
            max_scan,
            after,
            budget,
        };
        Ok(self.store.list(tenant, rt, q).await?)
    }
}

/// Which page of a list: `start_index` (1-based) or after the cursor's id, at most `count` resources,
/// within `budget` (the response's room, [`PageBudget`]) when given.
#[derive(Debug, Clone, Copy)]
pub struct PageAt<'a> {
    pub start_index: usize,
    pub count: usize,
    pub after: Option<&'a str>,
    pub budget: Option<PageBudget<'a>>,
}

/// Take `members` (any case) out of a Group POST/PUT body: members are items, not part of the document.
fn take_members(body: &mut Value) -> ScimResult<MemberPlan> {
    let Value::Object(obj) = body else {
        return Ok(MemberPlan::default());
    };
    match obj
        .keys()
        .find(|k| k.eq_ignore_ascii_case("members"))
        .cloned()
    {
        Some(k) => MemberPlan::from_members_value(&obj.remove(&k).unwrap_or(Value::Null)),
        None => Ok(MemberPlan::default()),
    }
}

/// Does the filter mention `members` anywhere?
fn mentions_members(f: &Filter) -> bool {
    match f {
        Filter::Compare { path, .. } | Filter::Present(path) | Filter::ValuePath { path, .. } => {
            path.name.eq_ignore_ascii_case("members")
        }
        Filter::And(a, b) | Filter::Or(a, b) => mentions_members(a) || mentions_members(b),
        Filter::Not(a) => mentions_members(a),
    }
}

/// Split `members eq "<id>"` terms (and-ed at the top) from the rest of a group filter. Membership is
/// answered from member items, so other uses of `members` in a filter are refused (400), never guessed.
fn split_member_terms(f: &Filter) -> ScimResult<(Option<Filter>, Vec<String>)> {
    match f {
        Filter::Compare { path, op: CompareOp::Eq, value: CompValue::Str(id) }
            if path.name.eq_ignore_ascii_case("members") && path.sub.as_deref().is_none_or(|s| s.eq_ignore_ascii_case("value")) =>
        {
            Ok((None, vec![id.clone()]))
        }
        Filter::And(a, b) => {
            let (ra, mut ia) = split_member_terms(a)?;
            let (rb, ib) = split_member_terms(b)?;
            ia.extend(ib);
            let rest = match (ra, rb) {
                (Some(x), Some(y)) => Some(Filter::And(Box::new(x), Box::new(y))),
                (x, y) => x.or(y),
            };
            Ok((rest, ia))
        }
        other if mentions_members(other) => Err(ScimError::invalid_filter(
            "Group members can be filtered only with members eq \"<id>\", alone or joined with and (e.g. id eq \"<group>\" and members eq \"<user>\")",
        )),
        other => Ok((Some(other.clone()), Vec::new())),
    }
}

impl Service {
    /// Create a User, or a Group with its `members`.
    pub async fn create(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        mut body: Value,
    ) -> ScimResult<StoredResource> {
        if !rt.is_group() {
            return self.create_document(tenant, rt, body).await;
        }
        let plan = take_members(&mut body)?;
        self.check_member_count(&plan)?;
        let res = self.new_resource(tenant, rt, body)?;
        let status = self.check_members(tenant, "", &plan).await?;
        let res = self.insert(tenant, rt, res).await?;
        if plan.adds.is_empty() {
            return Ok(res);
        }
        self.apply_members(tenant, &res.id, &plan, status).await?;
        self.get(tenant, rt, &res.id).await
    }

    /// PUT: replace the attributes (and, for a Group, the member set).
    pub async fn replace(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        id: &str,
        mut body: Value,
        if_match: Option<&str>,
    ) -> ScimResult<StoredResource> {
        if !rt.is_group() {
            return self.replace_document(tenant, rt, id, body, if_match).await;
        }
        let had_members = body
            .as_object()
            .is_some_and(|o| o.keys().any(|k| k.eq_ignore_ascii_case("members")));
        let mut plan = take_members(&mut body)?;
        plan.clear = had_members;
        self.check_member_count(&plan)?;
        let attrs = self.replacement(tenant, rt, id, body)?;
        let status = self.check_members(tenant, id, &plan).await?;
        let res = self
            .modify(tenant, rt, id, if_match, |_| Ok(attrs.clone()))
            .await?;
        if plan.is_empty() {
            return Ok(res);
        }
        self.apply_members(tenant, id, &plan, status).await?;
        self.get(tenant, rt, id).await
    }

    /// PATCH a User, or a Group: attribute operations through the PATCH engine, member operations as set
    /// operations on member items (validated before anything is written). Returns the resource, or None
    /// when member changes made the copy in hand stale (a caller that needs it reads it again: a group
    /// PATCH answered 204 costs no extra read).
    pub async fn patch(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> ScimResult<Option<StoredResource>> {
        if !rt.is_group() {
            return self
                .patch_document(tenant, rt, id, body, if_match)
                .await
                .map(Some);
        }
        check_path_id(rt, id)?;
        let ops = patch::parse_ops(body, rt)?;
        self.check_op_count(ops.len())?;
        let (attr_ops, plan) = members::split(ops)?;
        self.check_member_count(&plan)?;
        if attr_ops.is_empty() && if_match.is_none() && !plan.clear && !plan.is_empty() {
            // Entra's usual group PATCH: member adds and removes only. The read that says which ids are
            // users and members also says whether the group exists, so the group itself is not read:
            // 1 BatchGetItem + 1 TransactWriteItems.
            let status = self.check_members(tenant, id, &plan).await?;
            self.apply_members(tenant, id, &plan, status).await?;
            return Ok(None);
        }
        let current = self.get(tenant, rt, id).await?;
        check_if_match(rt, if_match, &current)?;
        let status = self.check_members(tenant, id, &plan).await?;
        let mut res = current;
        if !attr_ops.is_empty() {
            res = self
                .modify(tenant, rt, id, if_match, |old| {
                    self.patched(tenant, rt, old, &attr_ops)
                })
                .await?;
        }
        if plan.is_empty() {
            return Ok(Some(res));
        }
        self.apply_members(tenant, id, &plan, status).await?;
        Ok(None)
    }

    /// `old`'s attributes with PATCH operations `ops` applied, validated and checked against every limit
    /// (with `old`'s groups, which the write keeps).
    fn patched(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        old: &StoredResource,
        ops: &[patch::PatchOp],
    ) -> ScimResult<Map<String, Value>> {
        let mut attrs = old.attrs.clone();
        patch::apply(&mut attrs, ops, rt)?;
        model::validate(&mut attrs, rt)?;
        self.check_size(tenant, rt, &old.id, &old.groups, &attrs)?;
        Ok(attrs)
    }

    /// The configured limits, then what DynamoDB can store (keys, item size; see [`limits`]). The one
    /// place DynamoDB's size limits are checked for a resource write (the store does not check them
    /// again): every write runs it once, before its DynamoDB call — a POST ([`Self::new_resource`]) and a
    /// PUT ([`Self::replacement`]) before anything is read, a PATCH ([`Self::patched`]) on what it read.
    fn check_size(
        &self,
        tenant: &str,
        rt: &ResourceType,
        id: &str,
        groups: &[String],
        attrs: &Map<String, Value>,
    ) -> ScimResult<()> {
        model::check_size(
            attrs,
            self.limits.max_attribute_values,
            self.limits.max_value_len,
        )?;
        Ok(limits::resource(tenant, rt, id, attrs, groups)?)
    }

    fn check_op_count(&self, n: usize) -> ScimResult<()> {
        if n > self.limits.max_patch_ops {
            return Err(ScimError::invalid_value(format!(
                "The PATCH request has {n} operations; the limit is {}",
                self.limits.max_patch_ops
            )));
        }
        Ok(())
    }

    fn check_member_count(&self, plan: &MemberPlan) -> ScimResult<()> {
        if plan.changes() > self.limits.max_member_changes {
            return Err(ScimError::payload_too_large(format!(
                "The request changes {} memberships; at most {} are accepted in one request — split it into several PATCH requests",
                plan.changes(),
                self.limits.max_member_changes
            )));
        }
        Ok(())
    }

    /// Read whether the group exists (404 if not; an empty id is a group being created) and which of the
    /// plan's ids are users and members; refuse the request if an added id is not a user.
    async fn check_members(
        &self,
        tenant: &str,
        group_id: &str,
        plan: &MemberPlan,
    ) -> ScimResult<MemberStatus> {
        let ids: Vec<String> = plan
            .adds
            .iter()
            .chain(plan.removes.iter())
            .cloned()
            .collect();
        if ids.is_empty() {
            return Ok(MemberStatus::default());
        }
        let status = self.store.member_status(tenant, group_id, &ids).await?;
        // An empty id: the group is being created in this request, so it cannot exist yet.
        if !group_id.is_empty() && !status.group {
            return Err(not_found(group_resource_type(), group_id));
        }
        if let Some(missing) = plan.adds.iter().find(|a| !status.users.contains(*a)) {
            return Err(StoreError::NotAUser(missing.clone()).into());
        }
        Ok(status)
    }

    /// Write the plan: only real changes (new members added, current members removed); a clear reads
    /// the member list. Retried when memberships changed concurrently.
    async fn apply_members(
        &self,
        tenant: &str,
        group_id: &str,
        plan: &MemberPlan,
        mut status: MemberStatus,
    ) -> ScimResult<()> {
        let mut attempt = 0;
        loop {
            let (adds, removes): (Vec<String>, Vec<String>) = if plan.clear {
                let current = self
                    .store
                    .list_members(tenant, group_id, self.limits.max_group_members)
                    .await?;
                let keep: std::collections::HashSet<&String> = plan.adds.iter().collect();
                let current_set: std::collections::HashSet<&String> = current.iter().collect();
                (
                    plan.adds
                        .iter()
                        .filter(|a| !current_set.contains(a))
                        .cloned()
                        .collect(),
                    current
                        .iter()
                        .filter(|c| !keep.contains(c))
                        .cloned()
                        .collect(),
                )
            } else {
                (
                    plan.adds
                        .iter()
                        .filter(|a| !status.members.contains(*a))
                        .cloned()
                        .collect(),
                    plan.removes
                        .iter()
                        .filter(|r| status.members.contains(*r))
                        .cloned()
                        .collect(),
                )
            };
            if adds.is_empty() && removes.is_empty() {
                return Ok(());
            }
            match self
                .store
                .change_members(tenant, group_id, &adds, &removes, &model::now_rfc3339())
                .await
            {
                Ok(()) => return Ok(()),
                Err(StoreError::VersionConflict | StoreError::Contention)
                    if attempt + 1 < self.limits.write_attempts =>
                {
                    attempt += 1;
                    backoff(attempt).await;
                    status = self.check_members(tenant, group_id, plan).await?;
                }
                Err(StoreError::VersionConflict) => return Err(StoreError::Contention.into()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The member ids a representation of `res` lists: None for a user, or when `wanted` is false (the
    /// projection leaves them out: no read); a group's members otherwise — read from their items, except
    /// for an empty group (the member count is kept with every membership change).
    pub async fn members_of(
        &self,
        tenant: &str,
        rt: &ResourceType,
        res: &StoredResource,
        wanted: bool,
    ) -> ScimResult<Option<Vec<String>>> {
        if !rt.is_group() || !wanted {
            return Ok(None);
        }
        if res.member_count == 0 {
            return Ok(Some(Vec::new()));
        }
        self.members(tenant, &res.id).await.map(Some)
    }

    /// A group's member ids (bounded by `SCIM_MAX_GROUP_MEMBERS`).
    pub async fn members(&self, tenant: &str, group_id: &str) -> ScimResult<Vec<String>> {
        Ok(self
            .store
            .list_members(tenant, group_id, self.limits.max_group_members)
            .await?)
    }

    /// List, answering `members eq "<id>"` terms of Group filters from member items.
    pub async fn list(
        &self,
        tenant: &str,
        rt: &'static ResourceType,
        filter: Option<&Filter>,
        page: PageAt<'_>,
    ) -> ScimResult<ListPage> {
        let Some(f) = filter.filter(|f| rt.is_group() && mentions_members(f)) else {
            return self.list_documents(tenant, rt, filter, page).await;
        };
        let (rest, required) = split_member_terms(f)?;
        let candidates: Vec<StoredResource> = match &rest {
            Some(r) => {
                let count = self.limits.max_filter_scan;
                let all = PageAt {
                    start_index: 1,
                    count,
                    after: None,
                    budget: None,
                };
                self.list_documents(tenant, rt, Some(r), all).await?.items
            }
            None => {
                // `members eq "u"` alone: the user's own list of groups says which.
                let user = self
                    .store
                    .get(tenant, user_resource_type(), &required[0])
                    .await?;
                let mut groups = Vec::new();
                for gid in user.map(|u| u.groups).unwrap_or_default() {
                    groups.extend(self.store.get(tenant, group_resource_type(), &gid).await?);
                }
                groups
            }
        };
        let mut matches = Vec::new();
        for g in candidates {
            let status = self.store.member_status(tenant, &g.id, &required).await?;
            if required.iter().all(|u| status.members.contains(u)) {
                matches.push(g);
            }
        }
        matches.sort_by(|a, b| a.id.cmp(&b.id));
        let PageAt {
            start_index,
            count,
            after,
            budget,
        } = page;
        let max_scan = self.limits.max_filter_scan;
        Ok(ListQuery {
            filter: None,
            start_index,
            count,
            max_scan,
            after,
            budget,
        }
        .window(matches))
    }
}

fn not_found(rt: &ResourceType, id: &str) -> ScimError {
    ScimError::not_found(format!("{} {id} not found", rt.name))
}

/// An id in a path that no resource can have (longer than a DynamoDB sort key) is not found, without a read.
fn check_path_id(rt: &ResourceType, id: &str) -> ScimResult<()> {
    if limits::id_fits(id) {
        return Ok(());
    }
    Err(ScimError::not_found(format!(
        "{} not found: the id is {} bytes long, and ids are at most {} bytes (a DynamoDB sort key)",
        rt.name,
        id.len(),
        limits::SORT_KEY_BYTES
    )))
}

/// 412 when `If-Match` names another version than the current one.
fn check_if_match(
    rt: &ResourceType,
    if_match: Option<&str>,
    current: &StoredResource,
) -> ScimResult<()> {
    match if_match {
        Some(tag) if !etag_matches(tag, current) => Err(stale(rt, current)),
        _ => Ok(()),
    }
}

fn stale(rt: &ResourceType, current: &StoredResource) -> ScimError {
    ScimError::precondition_failed(format!(
        "The {} has changed: its current version is {}; read it again before changing it",
        rt.name,
        current.etag()
    ))
}

/// Jittered exponential backoff between optimistic write attempts (≈ 5 ms … 240 ms).
const WRITE_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(10), Duration::from_millis(160)).jittered();

async fn backoff(attempt: u32) {
    WRITE_BACKOFF.wait(attempt).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn etag_forms() {
        let r = StoredResource {
            id: "x".into(),
            attrs: Map::new(),
            created: String::new(),
            last_modified: String::new(),
            version: 3,
            ..Default::default()
        };
        assert!(etag_matches("W/\"3\"", &r));
        assert!(etag_matches("\"3\"", &r));
        assert!(etag_matches("*", &r));
        assert!(etag_matches("W/\"1\", W/\"3\"", &r));
        assert!(!etag_matches("W/\"2\"", &r));
    }

    /// A service whose store answers no call (nothing listens at its endpoint): a write that reaches
    /// DynamoDB fails there (503), so a 400 naming DynamoDB's limit shows the size check ran first.
    fn without_dynamodb() -> Service {
        let store = crate::store::dynamo::DynamoStore::local(
            "http://127.0.0.1:9",
            "scim",
            Duration::from_millis(300),
        );
        Service::new(Arc::new(store), Limits::default())
    }

    #[track_caller]
    fn too_large<T: std::fmt::Debug>(r: ScimResult<T>, limit: &str) {
        let e = r.expect_err("refused");
        assert_eq!(
            (e.status, e.detail.contains(limit)),
            (400, true),
            "a 400 naming {limit}: {e:?}"
        );
        assert!(e.detail.contains("nothing was changed"), "{e:?}");
    }

    /// The store no longer checks DynamoDB's size limits (`check_size` is the one place): every write
    /// path of the service must run it before its first DynamoDB call. Were it skipped on one, the write
    /// (or the read before it) would reach the store, which cannot answer here.
    #[tokio::test]
    async fn every_write_path_checks_dynamodb_sizes_before_any_call() {
        let svc = without_dynamodb();
        let (users, groups) = (user_resource_type(), group_resource_type());
        let name = "a".repeat(2100);
        let member = model::new_id();
        let id = model::new_id();
        let t = crate::auth::DEFAULT_TENANT;
        // POST (also what /Bulk runs), with and without members.
        too_large(
            svc.create(t, users, json!({"userName": name})).await,
            "2048",
        );
        too_large(
            svc.create(
                t,
                groups,
                json!({"displayName": name, "members": [{"value": member}]}),
            )
            .await,
            "2048",
        );
        // PUT, before the resource is read.
        too_large(
            svc.replace(t, users, &id, json!({"userName": name}), None)
                .await,
            "2048",
        );
        too_large(
            svc.replace(
                t,
                groups,
                &id,
                json!({"displayName": name, "members": [{"value": member}]}),
                None,
            )
            .await,
            "2048",
        );
        // PATCH, users' and groups' attribute operations alike, on what was read: with the user's groups,
        // which the write keeps (room for them is reserved up to about 1,000; past that they count).
        let old = StoredResource {
            id: id.clone(),
            attrs: json!({"userName": "u@x"}).as_object().unwrap().clone(),
            groups: (0..1500).map(|_| model::new_id()).collect(),
            version: 1,
            ..Default::default()
        };
        let title = |n: usize| {
            patch::parse_ops(
                &json!({"schemas": [crate::schema::PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "t".repeat(n)}]}),
                users,
            )
            .unwrap()
        };
        // Not too large alone (nor for the configured value length, raised here): too large with them.
        let svc = Service::new(
            svc.store.clone(),
            Limits {
                max_value_len: limits::ITEM_BYTES,
                ..Limits::default()
            },
        );
        let fits_alone = limits::ITEM_BYTES - limits::GROUPS_RESERVE_BYTES - 1000;
        let alone = StoredResource {
            groups: Vec::new(),
            ..old.clone()
        };
        assert!(svc.patched(t, users, &alone, &title(fits_alone)).is_ok());
        too_large(svc.patched(t, users, &old, &title(fits_alone)), "400 KB");
        let ops = patch::parse_ops(
            &json!({"schemas": [crate::schema::PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": name}]}),
            groups,
        )
        .unwrap();
        let group = StoredResource {
            attrs: json!({"displayName": "G"}).as_object().unwrap().clone(),
            groups: Vec::new(),
            ..old
        };
        too_large(svc.patched(t, groups, &group, &ops), "2048");
    }
}
