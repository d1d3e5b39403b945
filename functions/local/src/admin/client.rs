//! The operator API seen from a tool (`scim-admin status`): one tenant's summary from a running
//! `scim-local`, with the admin token.
//!
//! Imports: `scim_core::metrics` (the summary type).

use scim_core::metrics::TenantSummary;

/// `GET <endpoint>/api/tenants/<tenant>` (`endpoint` is `http://host:port/admin`).
pub async fn tenant_summary(
    endpoint: &str,
    admin_token: &str,
    tenant: &str,
) -> Result<TenantSummary, String> {
    let url = format!(
        "{}/api/tenants/{}",
        endpoint.trim_end_matches('/'),
        super::path_segment(tenant)
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .get(&url)
        .bearer_auth(admin_token)
        .send()
        .await
        .map_err(|e| format!("cannot reach {endpoint} ({e}): is scim-local running?"))?;
    match resp.status().as_u16() {
        200 => resp.json::<TenantSummary>().await.map_err(|e| format!("unexpected answer from {url}: {e}")),
        404 => Err(format!("no request has been counted for tenant {tenant} since scim-local started")),
        401 => Err(format!("{endpoint} refused the admin token (SCIM_ADMIN_TOKEN or the data directory's admin-token)")),
        s => Err(format!("{url} answered {s}")),
    }
}
