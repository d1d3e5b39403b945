//! The tenant register and the audit trail (`TenantStore`) through the real SDK on both engines: one
//! registration per id, changes conditioned on the version read, paging in id order, audit entries newest
//! first, and an audit entry committed exactly with the write it rides in — none for a write that failed,
//! one for a scope of several writes — with the DynamoDB calls each costs.

use scim_core::store::dynamo::DynamoStore;
use scim_core::store::{
    audited, count_calls, AuditEntry, ClientStore, TenantRecord, TenantState, TenantStore,
    TenantWrite, TokenStore,
};

scim_tests::store_tests!(
    a_tenant_is_registered_once,
    changes_are_conditioned_on_the_version,
    tenants_are_paged_in_id_order,
    an_audit_entry_commits_with_its_write_or_not_at_all,
    the_audit_trail_is_read_newest_first_in_pages,
    the_gate_reads_the_state_alone,
    a_credentials_use_is_written_down_and_never_brings_it_back,
);

fn rec(id: &str) -> TenantRecord {
    TenantRecord {
        id: id.into(),
        display_name: format!("{id} Inc."),
        metadata: r#"{"orgId":"o1"}"#.into(),
        state: TenantState::Active,
        created: "2026-12-07T00:00:00Z".into(),
        updated: "2026-12-07T00:00:00Z".into(),
        version: 1,
    }
}

fn entry(tenant: &str, at: &str, action: &str) -> AuditEntry {
    AuditEntry {
        tenant: tenant.into(),
        at: at.into(),
        nonce: "n1".into(),
        actor: "arn:aws:iam::123456789012:role/vendor".into(),
        action: action.into(),
        target: String::new(),
        expires: 4_102_444_800,
    }
}

async fn a_tenant_is_registered_once(s: DynamoStore) {
    let (first, calls) = count_calls(s.register_tenant(&rec("acme"))).await;
    assert_eq!((first.unwrap(), calls), (true, 1));
    assert!(!s.register_tenant(&rec("acme")).await.unwrap());
    assert_eq!(s.tenant("acme").await.unwrap(), Some(rec("acme")));
    assert_eq!(s.tenant("nobody").await.unwrap(), None);
    // The register the older `create_tenant` writes reads the same way.
    assert!(s
        .create_tenant("beta", "2026-12-07T00:00:00Z")
        .await
        .unwrap());
    let b = s.tenant("beta").await.unwrap().unwrap();
    assert_eq!(
        (
            b.display_name.as_str(),
            b.state,
            b.version,
            b.metadata.as_str()
        ),
        ("beta", TenantState::Active, 1, "{}")
    );
    assert_eq!(s.list_tenants().await.unwrap(), ["acme", "beta"]);
}

async fn changes_are_conditioned_on_the_version(s: DynamoStore) {
    s.register_tenant(&rec("acme")).await.unwrap();
    let mut next = rec("acme");
    next.state = TenantState::Paused;
    next.version = 2;
    let (r, calls) = count_calls(s.update_tenant(&next, 1)).await;
    assert_eq!((r.unwrap(), calls), (TenantWrite::Written, 1));
    // A second writer that read version 1 loses, and learns it.
    let mut stale = rec("acme");
    stale.state = TenantState::Deleting;
    stale.version = 2;
    assert_eq!(
        s.update_tenant(&stale, 1).await.unwrap(),
        TenantWrite::Changed
    );
    assert_eq!(s.tenant("acme").await.unwrap(), Some(next));
    let mut ghost = rec("ghost");
    ghost.version = 2;
    assert_eq!(
        s.update_tenant(&ghost, 1).await.unwrap(),
        TenantWrite::Missing
    );
    assert_eq!(
        s.tenant("ghost").await.unwrap(),
        None,
        "a failed update creates nothing"
    );
}

async fn tenants_are_paged_in_id_order(s: DynamoStore) {
    for i in [3, 1, 4, 0, 2] {
        s.register_tenant(&rec(&format!("t{i}"))).await.unwrap();
    }
    let p1 = s.tenant_page(None, 2).await.unwrap();
    let ids = |p: &scim_core::store::TenantPage| {
        p.tenants.iter().map(|t| t.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&p1), ["t0", "t1"]);
    let p2 = s.tenant_page(p1.next_after.as_deref(), 2).await.unwrap();
    assert_eq!(ids(&p2), ["t2", "t3"]);
    let p3 = s.tenant_page(p2.next_after.as_deref(), 2).await.unwrap();
    assert_eq!(ids(&p3), ["t4"]);
    assert_eq!(p3.next_after, None);
}

async fn an_audit_entry_commits_with_its_write_or_not_at_all(s: DynamoStore) {
    // Success: the write and its entry, in the same single call.
    let ((r, written), calls) = count_calls(audited(
        entry("acme", "2026-12-07T00:00:01.000000Z", "tenant.create"),
        s.register_tenant(&rec("acme")),
    ))
    .await;
    assert_eq!((r.unwrap(), written, calls), (true, true, 1));
    // A write whose condition fails leaves no entry.
    let (r, written) = audited(
        entry("acme", "2026-12-07T00:00:02.000000Z", "tenant.create"),
        s.register_tenant(&rec("acme")),
    )
    .await;
    assert_eq!((r.unwrap(), written), (false, false));
    let (r, written) = audited(
        entry("acme", "2026-12-07T00:00:03.000000Z", "client.revoke"),
        s.revoke_client("acme", "nope", "now"),
    )
    .await;
    assert_eq!((r.unwrap(), written), (false, false));
    // Several writes in one scope: one entry, with the first that commits.
    let (r, written) = audited(
        entry("acme", "2026-12-07T00:00:04.000000Z", "tenant.create"),
        async {
            s.register_tenant(&rec("beta")).await.unwrap();
            s.register_tenant(&rec("gamma")).await.unwrap()
        },
    )
    .await;
    assert!(r && written);
    // Outside a scope, no entry.
    s.register_tenant(&rec("delta")).await.unwrap();
    let trail = s.audit_entries("acme", None, 100).await.unwrap();
    let at: Vec<&str> = trail.iter().map(|e| e.at.as_str()).collect();
    assert_eq!(
        at,
        ["2026-12-07T00:00:04.000000Z", "2026-12-07T00:00:01.000000Z"]
    );
    assert_eq!(
        trail[1],
        entry("acme", "2026-12-07T00:00:01.000000Z", "tenant.create")
    );
    assert!(s.audit_entries("beta", None, 10).await.unwrap().is_empty());
}

async fn the_audit_trail_is_read_newest_first_in_pages(s: DynamoStore) {
    s.register_tenant(&rec("acme")).await.unwrap();
    for i in 0..5 {
        let e = entry(
            "acme",
            &format!("2026-12-07T00:00:0{i}.000000Z"),
            "tenant.pause",
        );
        let mut next = s.tenant("acme").await.unwrap().unwrap();
        let v = next.version;
        next.version += 1;
        let (r, written) = audited(e, s.update_tenant(&next, v)).await;
        assert_eq!((r.unwrap(), written), (TenantWrite::Written, true));
    }
    let first = s.audit_entries("acme", None, 2).await.unwrap();
    assert_eq!(first[0].at, "2026-12-07T00:00:04.000000Z");
    let last = first.last().unwrap();
    let before = scim_core::store::keys::audit_sk(&last.at, &last.nonce);
    let second = s.audit_entries("acme", Some(&before), 10).await.unwrap();
    let at: Vec<&str> = second.iter().map(|e| e.at.as_str()).collect();
    assert_eq!(
        at,
        [
            "2026-12-07T00:00:02.000000Z",
            "2026-12-07T00:00:01.000000Z",
            "2026-12-07T00:00:00.000000Z"
        ]
    );
    // Another tenant's trail is apart.
    assert!(s.audit_entries("acm", None, 10).await.unwrap().is_empty());
}

async fn the_gate_reads_the_state_alone(s: DynamoStore) {
    s.register_tenant(&rec("acme")).await.unwrap();
    let (state, calls) = count_calls(s.tenant_state("acme")).await;
    assert_eq!((state.unwrap(), calls), (Some(TenantState::Active), 1));
    assert_eq!(s.tenant_state("nobody").await.unwrap(), None);
}

async fn a_credentials_use_is_written_down_and_never_brings_it_back(s: DynamoStore) {
    use scim_core::store::{OAuthClient, TokenRecord, WifTrustRecord};
    s.create_tenant("acme", "x").await.unwrap();
    let tok = TokenRecord {
        hash: "ab".repeat(32),
        tenant: "acme".into(),
        id: "tok1".into(),
        label: String::new(),
        created: "x".into(),
        user: None,
        last_used: None,
    };
    s.put_token(&tok).await.unwrap();
    let (r, calls) = count_calls(s.note_token_use(&tok.hash, 1_700_000_000)).await;
    r.unwrap();
    assert_eq!(calls, 1);
    assert_eq!(
        s.token(&tok.hash).await.unwrap().unwrap().last_used,
        Some(1_700_000_000)
    );
    let (_, secret) = scim_core::oauth::credentials::new_secret(730, 1_700_000_000, "x").unwrap();
    let client = OAuthClient {
        tenant: "acme".into(),
        id: "c1".into(),
        label: String::new(),
        created: "x".into(),
        revoked: false,
        revoked_at: None,
        secrets: 1,
    };
    s.create_client(&client, &secret).await.unwrap();
    s.note_secret_use("acme", "c1", &secret.id, 1_700_000_100)
        .await
        .unwrap();
    let creds = s.client_credentials("acme", "c1").await.unwrap().unwrap();
    assert_eq!(creds.secrets[0].last_used, Some(1_700_000_100));
    let trust = WifTrustRecord {
        issuer: "i".into(),
        subject: "s".into(),
        audience: "a".into(),
        jwks_url: "https://example.com/keys".into(),
        last_used: None,
    };
    s.put_wif_trust("acme", &trust, "x").await.unwrap();
    s.note_trust_use("acme", 1_700_000_200).await.unwrap();
    assert_eq!(
        s.wif_trust("acme").await.unwrap().unwrap().last_used,
        Some(1_700_000_200)
    );
    // Revoked or removed meanwhile: the note brings nothing back.
    assert!(s.revoke_token("acme", "tok1").await.unwrap());
    assert!(s.revoke_secret("acme", "c1", &secret.id).await.unwrap());
    assert!(s.remove_wif_trust("acme").await.unwrap());
    s.note_token_use(&tok.hash, 1_700_000_300).await.unwrap();
    s.note_secret_use("acme", "c1", &secret.id, 1_700_000_300)
        .await
        .unwrap();
    s.note_trust_use("acme", 1_700_000_300).await.unwrap();
    assert_eq!(s.token(&tok.hash).await.unwrap(), None);
    assert!(s
        .client_credentials("acme", "c1")
        .await
        .unwrap()
        .unwrap()
        .secrets
        .is_empty());
    assert_eq!(s.wif_trust("acme").await.unwrap(), None);
}
