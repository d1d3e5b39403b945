//! Fault injection: a store wrapper that throttles, times out, fails or panics on chosen calls — before
//! the real call (nothing written) or after it (written, but the answer lost). After any failure the
//! resource is fully before or fully after the request, the client gets a SCIM error (429/503 with
//! Retry-After, or 500), and repeating the request is safe.

use async_trait::async_trait;
use scim_core::config::Limits;
use scim_core::filter::Filter;
use scim_core::model::StoredResource;
use scim_core::schema::ResourceType;
use scim_core::store::dynamo::DynamoStore;
use scim_core::store::{
    AddSecret, ClientCredentials, ClientSecret, ClientStore, OAuthClient, WifTrustRecord,
};
use scim_core::store::{
    AuditEntry, TenantPage, TenantRecord, TenantState, TenantStore, TenantWrite,
};
use scim_core::store::{
    ListPage, ListQuery, MemberStatus, MemberStore, ResourceStore, StoreError, TokenRecord,
    TokenStore,
};
use scim_core::store::{OffboardBatch, OffboardPhase, OffboardRecord, OffboardStore};
use scim_tests::urn::PATCH_OP;
use scim_tests::{Engine, TestServer};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
enum Fault {
    /// Fail without calling the store.
    Before(StoreError),
    /// Call the store (the write happens), then fail as a lost answer would.
    After(StoreError),
    Panic,
}

#[derive(Clone)]
struct Faulty {
    inner: DynamoStore,
    plan: Arc<Mutex<Vec<(&'static str, Fault)>>>,
}

impl Faulty {
    fn arm(&self, op: &'static str, f: Fault) {
        self.plan.lock().unwrap().push((op, f));
    }
    fn take(&self, op: &str) -> Option<Fault> {
        let mut plan = self.plan.lock().unwrap();
        let i = plan.iter().position(|(o, _)| *o == op)?;
        Some(plan.remove(i).1)
    }
}

macro_rules! faulty {
    ($self:ident, $op:literal, $call:expr) => {{
        match $self.take($op) {
            None => $call.await,
            Some(Fault::Before(e)) => Err(e),
            Some(Fault::After(e)) => {
                let _ = $call.await;
                Err(e)
            }
            Some(Fault::Panic) => panic!("injected panic in {}", $op),
        }
    }};
}

#[async_trait]
impl TokenStore for Faulty {
    async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.inner.token(hash).await
    }
    async fn create_tenant(&self, tenant: &str, now: &str) -> Result<bool, StoreError> {
        self.inner.create_tenant(tenant, now).await
    }
    async fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        self.inner.list_tenants().await
    }
    async fn put_token(&self, rec: &TokenRecord) -> Result<(), StoreError> {
        self.inner.put_token(rec).await
    }
    async fn list_tokens(&self, tenant: &str) -> Result<Vec<TokenRecord>, StoreError> {
        self.inner.list_tokens(tenant).await
    }
    async fn revoke_token(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        self.inner.revoke_token(tenant, id).await
    }
    async fn note_token_use(&self, hash: &str, at: i64) -> Result<(), StoreError> {
        self.inner.note_token_use(hash, at).await
    }
}

#[async_trait]
impl OffboardStore for Faulty {
    async fn offboard_record(
        &self,
        t: &str,
        started: &str,
    ) -> Result<Option<OffboardRecord>, StoreError> {
        self.inner.offboard_record(t, started).await
    }
    async fn latest_offboard(&self, t: &str) -> Result<Option<OffboardRecord>, StoreError> {
        self.inner.latest_offboard(t).await
    }
    async fn start_offboard(&self, r: &OffboardRecord) -> Result<bool, StoreError> {
        self.inner.start_offboard(r).await
    }
    async fn save_offboard(&self, r: &OffboardRecord, v: u64) -> Result<bool, StoreError> {
        self.inner.save_offboard(r, v).await
    }
    async fn note_offboard(&self, t: &str, started: &str, n: u64) -> Result<(), StoreError> {
        self.inner.note_offboard(t, started, n).await
    }
    async fn offboard_batch(
        &self,
        t: &str,
        phase: OffboardPhase,
        budget: u32,
    ) -> Result<OffboardBatch, StoreError> {
        self.inner.offboard_batch(t, phase, budget).await
    }
    async fn finish_offboard(&self, r: &OffboardRecord) -> Result<(), StoreError> {
        self.inner.finish_offboard(r).await
    }
}

#[async_trait]
impl TenantStore for Faulty {
    async fn tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError> {
        self.inner.tenant(id).await
    }
    async fn tenant_state(&self, id: &str) -> Result<Option<TenantState>, StoreError> {
        self.inner.tenant_state(id).await
    }
    async fn register_tenant(&self, r: &TenantRecord) -> Result<bool, StoreError> {
        self.inner.register_tenant(r).await
    }
    async fn update_tenant(&self, r: &TenantRecord, v: u64) -> Result<TenantWrite, StoreError> {
        self.inner.update_tenant(r, v).await
    }
    async fn tenant_page(&self, after: Option<&str>, n: usize) -> Result<TenantPage, StoreError> {
        self.inner.tenant_page(after, n).await
    }
    async fn audit_entries(
        &self,
        t: &str,
        before: Option<&str>,
        n: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.audit_entries(t, before, n).await
    }
}

/// Setup links and their sessions pass through untouched.
#[async_trait]
impl scim_core::store::LinkStore for Faulty {
    async fn put_link(&self, l: &scim_core::store::SetupLink) -> Result<(), StoreError> {
        self.inner.put_link(l).await
    }
    async fn link(
        &self,
        t: &str,
        k: &str,
    ) -> Result<Option<scim_core::store::SetupLink>, StoreError> {
        self.inner.link(t, k).await
    }
    async fn list_links(&self, t: &str) -> Result<Vec<scim_core::store::SetupLink>, StoreError> {
        self.inner.list_links(t).await
    }
    async fn revoke_link(&self, t: &str, k: &str, now: &str) -> Result<bool, StoreError> {
        self.inner.revoke_link(t, k, now).await
    }
    async fn open_link(
        &self,
        t: &str,
        k: &str,
        single_use: bool,
        now: &str,
        now_unix: i64,
        s: &scim_core::store::SetupSession,
    ) -> Result<scim_core::store::LinkOpen, StoreError> {
        self.inner
            .open_link(t, k, single_use, now, now_unix, s)
            .await
    }
    async fn setup_session(
        &self,
        t: &str,
        h: &str,
    ) -> Result<Option<scim_core::store::SetupSession>, StoreError> {
        self.inner.setup_session(t, h).await
    }
    async fn audit_only(&self) -> Result<(), StoreError> {
        self.inner.audit_only().await
    }
}

#[async_trait]
impl ClientStore for Faulty {
    async fn create_client(&self, c: &OAuthClient, s: &ClientSecret) -> Result<(), StoreError> {
        self.inner.create_client(c, s).await
    }
    async fn oauth_client(&self, t: &str, id: &str) -> Result<Option<OAuthClient>, StoreError> {
        self.inner.oauth_client(t, id).await
    }
    async fn client_credentials(
        &self,
        t: &str,
        id: &str,
    ) -> Result<Option<ClientCredentials>, StoreError> {
        self.inner.client_credentials(t, id).await
    }
    async fn list_clients(&self, t: &str) -> Result<Vec<ClientCredentials>, StoreError> {
        self.inner.list_clients(t).await
    }
    async fn add_secret(
        &self,
        t: &str,
        c: &str,
        s: &ClientSecret,
    ) -> Result<AddSecret, StoreError> {
        self.inner.add_secret(t, c, s).await
    }
    async fn revoke_secret(&self, t: &str, c: &str, s: &str) -> Result<bool, StoreError> {
        self.inner.revoke_secret(t, c, s).await
    }
    async fn revoke_client(&self, t: &str, c: &str, now: &str) -> Result<bool, StoreError> {
        self.inner.revoke_client(t, c, now).await
    }
    async fn wif_trust(&self, t: &str) -> Result<Option<WifTrustRecord>, StoreError> {
        self.inner.wif_trust(t).await
    }
    async fn put_wif_trust(
        &self,
        t: &str,
        w: &WifTrustRecord,
        now: &str,
    ) -> Result<(), StoreError> {
        self.inner.put_wif_trust(t, w, now).await
    }
    async fn remove_wif_trust(&self, t: &str) -> Result<bool, StoreError> {
        self.inner.remove_wif_trust(t).await
    }
    async fn note_secret_use(&self, t: &str, c: &str, s: &str, at: i64) -> Result<(), StoreError> {
        self.inner.note_secret_use(t, c, s, at).await
    }
    async fn note_trust_use(&self, t: &str, at: i64) -> Result<(), StoreError> {
        self.inner.note_trust_use(t, at).await
    }
}

#[async_trait]
impl ResourceStore for Faulty {
    async fn get(
        &self,
        t: &str,
        rt: &'static ResourceType,
        id: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        faulty!(self, "get", self.inner.get(t, rt, id))
    }
    async fn create(
        &self,
        t: &str,
        rt: &'static ResourceType,
        r: &StoredResource,
    ) -> Result<(), StoreError> {
        faulty!(self, "create", self.inner.create(t, rt, r))
    }
    async fn replace(
        &self,
        t: &str,
        rt: &'static ResourceType,
        o: &StoredResource,
        n: &StoredResource,
    ) -> Result<(), StoreError> {
        faulty!(self, "replace", self.inner.replace(t, rt, o, n))
    }
    async fn delete(
        &self,
        t: &str,
        rt: &'static ResourceType,
        r: &StoredResource,
    ) -> Result<(), StoreError> {
        faulty!(self, "delete", self.inner.delete(t, rt, r))
    }
    async fn list(
        &self,
        t: &str,
        rt: &'static ResourceType,
        q: ListQuery<'_>,
    ) -> Result<ListPage, StoreError> {
        faulty!(self, "list", self.inner.list(t, rt, q))
    }
}

#[async_trait]
impl MemberStore for Faulty {
    async fn member_status(
        &self,
        t: &str,
        g: &str,
        ids: &[String],
    ) -> Result<MemberStatus, StoreError> {
        faulty!(self, "member_status", self.inner.member_status(t, g, ids))
    }
    async fn list_members(
        &self,
        t: &str,
        g: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        faulty!(self, "list_members", self.inner.list_members(t, g, limit))
    }
    async fn change_members(
        &self,
        t: &str,
        g: &str,
        a: &[String],
        r: &[String],
        now: &str,
    ) -> Result<(), StoreError> {
        faulty!(
            self,
            "change_members",
            self.inner.change_members(t, g, a, r, now)
        )
    }
}

async fn server() -> (TestServer, Faulty) {
    let cell: Arc<Mutex<Option<Faulty>>> = Arc::default();
    let c = cell.clone();
    let srv = TestServer::start_wrapped(Engine::Dynoxide, Limits::default(), move |inner| {
        let f = Faulty {
            inner,
            plan: Arc::default(),
        };
        *c.lock().unwrap() = Some(f.clone());
        Arc::new(f)
    })
    .await;
    let f = cell.lock().unwrap().take().unwrap();
    (srv, f)
}

fn disable() -> Value {
    json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "path": "active", "value": "False"}, {"op": "Replace", "path": "title", "value": "Gone"}]})
}

fn throttled() -> StoreError {
    StoreError::Throttled("injected".into())
}
fn timeout() -> StoreError {
    StoreError::Unavailable("injected timeout".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_patch_changes_nothing_and_says_when_to_retry() {
    let (srv, f) = server().await;
    let id = srv
        .create_user(&json!({"userName": "a@x.com", "active": true}))
        .await;
    let before = srv.get(&format!("/Users/{id}")).await.body;
    f.arm("replace", Fault::Before(throttled()));
    let r = srv.patch(&format!("/Users/{id}"), &disable()).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    assert_eq!(
        srv.get(&format!("/Users/{id}")).await.body,
        before,
        "fully before"
    );
    // The retry lands whole.
    let r = srv.patch(&format!("/Users/{id}"), &disable()).await;
    assert_eq!(
        (r.status, r.body["active"].clone(), r.body["title"].clone()),
        (200, json!(false), json!("Gone"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answer_after_patch_leaves_it_fully_applied_and_retry_is_safe() {
    let (srv, f) = server().await;
    let id = srv
        .create_user(&json!({"userName": "a@x.com", "active": true}))
        .await;
    f.arm("replace", Fault::After(timeout()));
    let r = srv.patch(&format!("/Users/{id}"), &disable()).await;
    assert_eq!((r.status, r.header("retry-after")), (503, Some("2")));
    let after = srv.get(&format!("/Users/{id}")).await.body;
    assert_eq!(
        (
            after["active"].clone(),
            after["title"].clone(),
            after["meta"]["version"].clone()
        ),
        (json!(false), json!("Gone"), json!("W/\"2\""))
    );
    let r = srv.patch(&format!("/Users/{id}"), &disable()).await;
    assert_eq!(
        (r.status, r.body["meta"]["version"].clone()),
        (200, json!("W/\"2\"")),
        "the retry changes nothing more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answer_after_create_makes_the_retry_a_409_never_a_duplicate() {
    let (srv, f) = server().await;
    let body = json!({"userName": "Entra.User@contoso.com", "externalId": "e-1"});
    f.arm("create", Fault::After(timeout()));
    assert_eq!(srv.post("/Users", &body).await.status, 503);
    let again = srv.post("/Users", &body).await;
    assert_eq!(
        (again.status, again.body["scimType"].clone()),
        (409, json!("uniqueness"))
    );
    let found = srv
        .get("/Users?filter=userName+eq+%22entra.user%40contoso.com%22")
        .await;
    assert_eq!(
        found.body["totalResults"], 1,
        "the existing id is discoverable by filter"
    );
    assert_eq!(srv.get("/Users").await.body["totalResults"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_before_a_create_or_delete_write_nothing() {
    let (srv, f) = server().await;
    f.arm("create", Fault::Before(throttled()));
    assert_eq!(
        srv.post("/Users", &json!({"userName": "a@x.com"}))
            .await
            .status,
        429
    );
    assert_eq!(srv.get("/Users").await.body["totalResults"], 0);
    let id = srv.create_user(&json!({"userName": "a@x.com"})).await;
    f.arm(
        "delete",
        Fault::Before(StoreError::Internal("injected".into())),
    );
    let r = srv.delete(&format!("/Users/{id}")).await;
    assert_eq!((r.status, r.body["status"].clone()), (500, json!("500")));
    assert_eq!(
        srv.get(&format!("/Users/{id}")).await.status,
        200,
        "still fully there"
    );
    assert_eq!(srv.delete(&format!("/Users/{id}")).await.status, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_change_failure_leaves_membership_as_it_was() {
    let (srv, f) = server().await;
    let (a, b) = (
        srv.create_user(&json!({"userName": "a@x"})).await,
        srv.create_user(&json!({"userName": "b@x"})).await,
    );
    let gid = srv
        .post(
            "/Groups",
            &json!({"displayName": "G", "members": [{"value": a}]}),
        )
        .await
        .id();
    let before = srv.get(&format!("/Groups/{gid}")).await.body;
    f.arm("change_members", Fault::Before(timeout()));
    let add = json!({"schemas": [PATCH_OP], "Operations": [{"op": "Add", "path": "members", "value": [{"value": b}]}]});
    assert_eq!(srv.patch(&format!("/Groups/{gid}"), &add).await.status, 503);
    assert_eq!(srv.get(&format!("/Groups/{gid}")).await.body, before);
    assert_eq!(srv.patch(&format!("/Groups/{gid}"), &add).await.status, 204);
    assert_eq!(
        srv.get(&format!("/Groups/{gid}")).await.body["members"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_failures_and_panics_are_scim_errors_and_the_server_keeps_serving() {
    let (srv, f) = server().await;
    let id = srv.create_user(&json!({"userName": "a@x.com"})).await;
    f.arm("get", Fault::Before(timeout()));
    let r = srv.get(&format!("/Users/{id}")).await;
    assert_eq!((r.status, r.header("retry-after")), (503, Some("2")));
    f.arm(
        "list",
        Fault::Before(StoreError::Internal("injected".into())),
    );
    let r = srv.get("/Users").await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (500, Some("application/scim+json"))
    );
    assert!(
        !r.text.contains("injected"),
        "internal details stay in the log: {}",
        r.text
    );
    f.arm("get", Fault::Panic);
    let r = srv.get(&format!("/Users/{id}")).await;
    assert_eq!(
        (r.status, r.body["status"].clone(), r.header("content-type")),
        (500, json!("500"), Some("application/scim+json"))
    );
    assert_eq!(
        srv.get(&format!("/Users/{id}")).await.status,
        200,
        "still serving after the panic"
    );
}

// Keep the unused-import lint quiet for types only named in signatures.
#[allow(dead_code)]
fn _types(_: Option<&Filter>) {}
