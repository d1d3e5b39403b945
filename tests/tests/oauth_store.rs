//! The OAuth client store (`ClientStore`) on both engines: clients, secrets, WIF trusts, their DynamoDB
//! calls, tenant isolation; the races between writes to one client (revoke vs rotate, rotate vs rotate at
//! the bound, revoke-secret vs rotate) with their invariants; the signing key ring read from moto's SSM;
//! and `scim-admin`'s `client`/`wif` commands against each engine.

use scim_core::oauth::credentials::{self, DEFAULT_SECRET_DAYS};
use scim_core::store::dynamo::DynamoStore;
use scim_core::store::{
    count_calls, AddSecret, ClientSecret, ClientStore, OAuthClient, StoreError, TokenStore,
    WifTrustRecord, MAX_SECRETS_PER_CLIENT,
};
use scim_tests::{fresh_store, store_tests, Engine};
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn secret() -> (String, ClientSecret) {
    credentials::new_secret(DEFAULT_SECRET_DAYS, now(), "2026-12-02T00:00:00Z").unwrap()
}

fn client(tenant: &str) -> OAuthClient {
    OAuthClient {
        tenant: tenant.into(),
        id: credentials::new_client_id(),
        label: "entra".into(),
        created: "2026-12-02T00:00:00Z".into(),
        revoked: false,
        revoked_at: None,
        secrets: 1,
    }
}

/// A registered tenant `t` with one new client; returns the client and its first secret.
async fn new_client(s: &DynamoStore, t: &str) -> (OAuthClient, String, ClientSecret) {
    s.create_tenant(t, "2026-12-02T00:00:00Z").await.unwrap();
    let c = client(t);
    let (plain, stored) = secret();
    s.create_client(&c, &stored).await.expect("create client");
    (c, plain, stored)
}

/// Retries a write that met another write on the same items (DynamoDB's TransactionConflict).
async fn retry<T, F, Fut>(mut f: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    for i in 0..50u64 {
        match f().await {
            Err(StoreError::Contention) => {
                tokio::time::sleep(std::time::Duration::from_millis(5 + i * 3)).await
            }
            other => return other,
        }
    }
    Err(StoreError::Contention)
}

async fn client_lifecycle(s: DynamoStore) {
    let (c, plain, first) = new_client(&s, "acme").await;
    let (got, calls) = count_calls(s.oauth_client("acme", &c.id)).await;
    assert_eq!(calls, 1, "the access-token check's read is one GetItem");
    assert_eq!(got.unwrap(), Some(c.clone()));
    let (creds, calls) = count_calls(s.client_credentials("acme", &c.id)).await;
    assert_eq!(calls, 1, "the token endpoint's read is one Query");
    let creds = creds.unwrap().unwrap();
    assert_eq!(
        (creds.client.clone(), creds.secrets.clone()),
        (c.clone(), vec![first.clone()])
    );
    assert!(
        !creds.secrets[0].hash.contains(&plain),
        "only the hash is stored"
    );
    assert_eq!(creds.secrets[0].hash, credentials::secret_hash(&plain));

    let (_, second) = secret();
    assert_eq!(
        s.add_secret("acme", &c.id, &second).await.unwrap(),
        AddSecret::Added
    );
    let creds = s.client_credentials("acme", &c.id).await.unwrap().unwrap();
    assert_eq!((creds.client.secrets, creds.secrets.len()), (2, 2));

    // A second client: listing shows both, each with its own secrets; a lookup by id never mixes them.
    let other = client("acme");
    s.create_client(&other, &secret().1).await.unwrap();
    let all = s.list_clients("acme").await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        all.iter()
            .find(|x| x.client.id == c.id)
            .unwrap()
            .secrets
            .len(),
        2
    );
    assert_eq!(
        all.iter()
            .find(|x| x.client.id == other.id)
            .unwrap()
            .secrets
            .len(),
        1
    );

    assert!(s.revoke_secret("acme", &c.id, &first.id).await.unwrap());
    assert!(
        !s.revoke_secret("acme", &c.id, &first.id).await.unwrap(),
        "already revoked"
    );
    assert!(!s
        .revoke_secret("acme", &c.id, "nosuchsecret")
        .await
        .unwrap());
    let creds = s.client_credentials("acme", &c.id).await.unwrap().unwrap();
    assert_eq!(
        (
            creds.client.secrets,
            creds
                .secrets
                .iter()
                .map(|x| x.id.clone())
                .collect::<Vec<_>>()
        ),
        (1, vec![second.id.clone()])
    );

    assert!(s
        .revoke_client("acme", &c.id, "2026-12-02T01:00:00Z")
        .await
        .unwrap());
    let got = s.oauth_client("acme", &c.id).await.unwrap().unwrap();
    assert_eq!(
        (got.revoked, got.revoked_at.as_deref()),
        (true, Some("2026-12-02T01:00:00Z"))
    );
    assert!(s
        .revoke_client("acme", &c.id, "2026-12-02T02:00:00Z")
        .await
        .unwrap());
    assert_eq!(
        s.oauth_client("acme", &c.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .as_deref(),
        Some("2026-12-02T01:00:00Z"),
        "the first revocation time stays"
    );
    assert_eq!(
        s.add_secret("acme", &c.id, &secret().1).await.unwrap(),
        AddSecret::Revoked
    );
    assert!(!s.revoke_client("acme", "nosuchclient", "x").await.unwrap());
    assert_eq!(
        s.add_secret("acme", "nosuchclient", &secret().1)
            .await
            .unwrap(),
        AddSecret::NoClient
    );
    assert_eq!(s.oauth_client("acme", "nosuchclient").await.unwrap(), None);
    assert_eq!(
        s.client_credentials("acme", "nosuchclient").await.unwrap(),
        None
    );
    // A client id that is a prefix of another's is not that client.
    assert_eq!(
        s.client_credentials("acme", &c.id[..10]).await.unwrap(),
        None
    );
}

async fn tenants_are_separate(s: DynamoStore) {
    let (c, _, _) = new_client(&s, "acme").await;
    s.create_tenant("globex", "x").await.unwrap();
    assert_eq!(s.oauth_client("globex", &c.id).await.unwrap(), None);
    assert_eq!(s.client_credentials("globex", &c.id).await.unwrap(), None);
    assert!(s.list_clients("globex").await.unwrap().is_empty());
    assert!(!s.revoke_client("globex", &c.id, "x").await.unwrap());
    assert_eq!(
        s.add_secret("globex", &c.id, &secret().1).await.unwrap(),
        AddSecret::NoClient
    );
    assert!(
        !s.oauth_client("acme", &c.id)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    // An unregistered tenant gets no client; the base URL's directory needs no registration.
    let e = s
        .create_client(&client("nobody"), &secret().1)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Internal(m) if m.contains("does not exist")),
        "{e:?}"
    );
    assert!(s.list_clients("nobody").await.unwrap().is_empty());
    let d = client("default");
    s.create_client(&d, &secret().1)
        .await
        .expect("the base URL's directory");
    assert_eq!(
        s.oauth_client("default", &d.id).await.unwrap().unwrap().id,
        d.id
    );
    // An id taken already: refused, the first client untouched.
    let mut dup = client("acme");
    dup.id = c.id.clone();
    assert!(s.create_client(&dup, &secret().1).await.is_err());
    assert_eq!(
        s.client_credentials("acme", &c.id)
            .await
            .unwrap()
            .unwrap()
            .secrets
            .len(),
        1
    );
}

async fn secrets_are_bounded(s: DynamoStore) {
    let (c, _, _) = new_client(&s, "acme").await;
    for _ in 1..MAX_SECRETS_PER_CLIENT {
        assert_eq!(
            s.add_secret("acme", &c.id, &secret().1).await.unwrap(),
            AddSecret::Added
        );
    }
    assert_eq!(
        s.add_secret("acme", &c.id, &secret().1).await.unwrap(),
        AddSecret::TooMany
    );
    let creds = s.client_credentials("acme", &c.id).await.unwrap().unwrap();
    assert_eq!(
        (creds.client.secrets, creds.secrets.len()),
        (MAX_SECRETS_PER_CLIENT, MAX_SECRETS_PER_CLIENT as usize)
    );
    // Revoking one makes room for one.
    assert!(s
        .revoke_secret("acme", &c.id, &creds.secrets[0].id)
        .await
        .unwrap());
    assert_eq!(
        s.add_secret("acme", &c.id, &secret().1).await.unwrap(),
        AddSecret::Added
    );
}

async fn wif_trusts(s: DynamoStore) {
    s.create_tenant("acme", "x").await.unwrap();
    let t = WifTrustRecord {
        issuer: "https://login.microsoftonline.com/ce5f061f-abe6-4e40-9615-301f87bcb7f0/v2.0".into(),
        subject: "9c7e2f1a-3b4d-4e5f-8a9b-0c1d2e3f4a5b".into(),
        audience: "api://b5ba7a93-4452-4522-aeb4-a2b5da870c16".into(),
        jwks_url: "https://login.microsoftonline.com/ce5f061f-abe6-4e40-9615-301f87bcb7f0/discovery/v2.0/keys".into(),
        last_used: None,
    };
    assert_eq!(s.wif_trust("acme").await.unwrap(), None);
    s.put_wif_trust("acme", &t, "x").await.unwrap();
    let (got, calls) = count_calls(s.wif_trust("acme")).await;
    assert_eq!((got.unwrap(), calls), (Some(t.clone()), 1));
    let t2 = WifTrustRecord {
        audience: "api://another".into(),
        ..t.clone()
    };
    s.put_wif_trust("acme", &t2, "y").await.unwrap();
    assert_eq!(s.wif_trust("acme").await.unwrap(), Some(t2));
    s.create_tenant("globex", "x").await.unwrap();
    assert_eq!(
        s.wif_trust("globex").await.unwrap(),
        None,
        "one tenant's trust is not another's"
    );
    assert!(
        s.put_wif_trust("nobody", &t, "x").await.is_err(),
        "an unregistered tenant gets no trust"
    );
    assert!(s.remove_wif_trust("acme").await.unwrap());
    assert!(!s.remove_wif_trust("acme").await.unwrap());
    assert_eq!(s.wif_trust("acme").await.unwrap(), None);
}

store_tests!(
    client_lifecycle,
    tenants_are_separate,
    secrets_are_bounded,
    wif_trusts
);

// ---------------------------------------------------------------------------------------------------
// Races: each pair of writes on one client, fired together, many times; then the invariants.
// ---------------------------------------------------------------------------------------------------

fn trials() -> usize {
    std::env::var("SCIM_RACE_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// Trials per table (moto's transactions slow down as a table grows).
const ROUND: usize = 25;

/// The client's stored secret count equals its secret items.
async fn counted_right(s: &DynamoStore, t: &str, id: &str) -> ClientSecretState {
    let creds = s.client_credentials(t, id).await.unwrap().unwrap();
    assert_eq!(
        creds.client.secrets as usize,
        creds.secrets.len(),
        "the count on the client item agrees with its secret items"
    );
    ClientSecretState {
        revoked: creds.client.revoked,
        secrets: creds.secrets.iter().map(|x| x.id.clone()).collect(),
    }
}

struct ClientSecretState {
    revoked: bool,
    secrets: Vec<String>,
}

async fn race_revoke_vs_rotate(engine: Engine) {
    let mut s = fresh_store(engine).await;
    let (mut added, mut refused) = (0, 0);
    for i in 0..trials() {
        if i > 0 && i % ROUND == 0 {
            s = fresh_store(engine).await;
        }
        let (c, _, _) = new_client(&s, "acme").await;
        let (_, extra) = secret();
        let (revoke, add) = (
            retry(|| s.revoke_client("acme", &c.id, "now")),
            retry(|| s.add_secret("acme", &c.id, &extra)),
        );
        // Fired together, each first half of the time: an engine that runs a call to its end once polled
        // (dynoxide in process) would otherwise always see the same order.
        let (revoked, add) = if i % 2 == 0 {
            futures::join!(revoke, add)
        } else {
            let (a, r) = futures::join!(add, revoke);
            (r, a)
        };
        assert!(revoked.unwrap());
        let state = counted_right(&s, "acme", &c.id).await;
        assert!(state.revoked, "the revocation always lands");
        match add.unwrap() {
            // The rotation committed first: its secret is there (and gives nothing: the client is revoked).
            AddSecret::Added => {
                added += 1;
                assert!(state.secrets.contains(&extra.id));
            }
            // The revocation committed first: the rotation was refused and wrote nothing.
            AddSecret::Revoked => {
                refused += 1;
                assert!(
                    !state.secrets.contains(&extra.id),
                    "no secret added after the revocation"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.add_secret("acme", &c.id, &secret().1).await.unwrap(),
            AddSecret::Revoked
        );
    }
    eprintln!("revoke vs rotate on {engine:?}: rotation first {added}, revocation first {refused}");
    if trials() >= 10 {
        assert!(
            added > 0 && refused > 0,
            "both orders were exercised: {added} / {refused}"
        );
    }
}

async fn race_rotate_vs_rotate_at_the_bound(engine: Engine) {
    let mut s = fresh_store(engine).await;
    let mut wins = [0usize; 2];
    for i in 0..trials() {
        if i > 0 && i % ROUND == 0 {
            s = fresh_store(engine).await;
        }
        let (c, _, _) = new_client(&s, "acme").await;
        for _ in 2..MAX_SECRETS_PER_CLIENT {
            assert_eq!(
                s.add_secret("acme", &c.id, &secret().1).await.unwrap(),
                AddSecret::Added
            );
        }
        // Room for exactly one more secret, and two rotations at once.
        let (a, b) = (secret().1, secret().1);
        let (ra, rb) = futures::join!(
            retry(|| s.add_secret("acme", &c.id, &a)),
            retry(|| s.add_secret("acme", &c.id, &b))
        );
        wins[usize::from(ra.as_ref().is_ok_and(|r| *r == AddSecret::Added))] += 1;
        let mut outcomes = [ra.unwrap(), rb.unwrap()];
        outcomes.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(
            outcomes,
            [AddSecret::Added, AddSecret::TooMany],
            "exactly one of two rotations fits under the bound"
        );
        let state = counted_right(&s, "acme", &c.id).await;
        assert_eq!(state.secrets.len(), MAX_SECRETS_PER_CLIENT as usize);
        assert!(state.secrets.contains(&a.id) != state.secrets.contains(&b.id));
    }
    eprintln!(
        "rotate vs rotate on {engine:?}: second won {}, first won {}",
        wins[0], wins[1]
    );
}

async fn race_revoke_secret_vs_rotate(engine: Engine) {
    let mut s = fresh_store(engine).await;
    for i in 0..trials() {
        if i > 0 && i % ROUND == 0 {
            s = fresh_store(engine).await;
        }
        let (c, _, first) = new_client(&s, "acme").await;
        let (_, extra) = secret();
        let (revoke, add) = (
            retry(|| s.revoke_secret("acme", &c.id, &first.id)),
            retry(|| s.add_secret("acme", &c.id, &extra)),
        );
        let (gone, add) = if i % 2 == 0 {
            futures::join!(revoke, add)
        } else {
            let (a, r) = futures::join!(add, revoke);
            (r, a)
        };
        assert!(gone.unwrap());
        assert_eq!(add.unwrap(), AddSecret::Added);
        let state = counted_right(&s, "acme", &c.id).await;
        assert_eq!(state.secrets, vec![extra.id.clone()]);
    }
}

scim_tests::both_engines!(
    each in races;
    race_revoke_vs_rotate,
    race_rotate_vs_rotate_at_the_bound,
    race_revoke_secret_vs_rotate,
);

// ---------------------------------------------------------------------------------------------------
// The signing key ring from SSM (moto).
// ---------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_from_an_ssm_securestring() {
    use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
    use scim_core::oauth::signing::KeyRing;
    let conf = aws_sdk_ssm::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(scim_tests::endpoint(Engine::Moto))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    let ssm = aws_sdk_ssm::Client::from_conf(conf);
    let name = format!("/scim-test/{}/oauth-keys", std::process::id());
    let text = format!(
        "{},{}",
        KeyRing::generate_text("new"),
        KeyRing::generate_text("old")
    );
    ssm.put_parameter()
        .name(&name)
        .value(&text)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put parameter");
    let ring = KeyRing::from_ssm(&ssm, &name).await.expect("read the ring");
    assert_eq!(ring.kids(), vec!["new", "old"]);
    // What the ring signs, a ring parsed from the same text verifies.
    let (kid, tag) = ring.sign(b"data");
    assert!(KeyRing::parse(&text).unwrap().verify(kid, b"data", &tag));
    let e = KeyRing::from_ssm(&ssm, "/scim-test/missing")
        .await
        .unwrap_err();
    assert!(e.contains("/scim-test/missing"), "{e}");
    ssm.put_parameter()
        .name(&name)
        .value("k:00")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let e = KeyRing::from_ssm(&ssm, &name).await.unwrap_err();
    assert!(
        e.contains("shorter than 32 bytes") && !e.contains("k:00"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------------
// scim-admin's client and wif commands (the module the binary runs), on both engines.
// ---------------------------------------------------------------------------------------------------

fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .trim()
        .to_string()
}

async fn admin_commands(s: DynamoStore) {
    s.create_tenant("acme", "x").await.unwrap();
    let m = scim_core::manage::Manager::new(
        std::sync::Arc::new(s.clone()),
        scim_core::manage::ManageSettings::default(),
    );
    use scim_local::cli::clients::command;
    let out = command(&m, &["client", "create", "acme", "--label", "Entra prod"])
        .await
        .unwrap();
    let (id, plain, secret_id) = (
        field(&out, "client id:"),
        field(&out, "client secret:"),
        field(&out, "secret id:"),
    );
    assert!(out.contains("/acme/oauth2/token"), "{out}");
    let creds = s.client_credentials("acme", &id).await.unwrap().unwrap();
    assert_eq!(
        (
            creds.client.label.as_str(),
            creds.secrets[0].hash.clone(),
            creds.secrets[0].id.clone()
        ),
        (
            "Entra prod",
            credentials::secret_hash(&plain),
            secret_id.clone()
        )
    );
    let days = (creds.secrets[0].expires - now()) / 86_400;
    assert!((729..=730).contains(&days), "two years by default: {days}");

    let listed = command(&m, &["client", "list", "acme"]).await.unwrap();
    assert!(
        listed.contains(&id) && listed.contains(&secret_id) && listed.contains("active"),
        "{listed}"
    );
    assert!(
        !listed.contains(&plain),
        "a secret is printed once, never listed"
    );

    let out = command(&m, &["client", "rotate", "acme", &id, "--days", "365"])
        .await
        .unwrap();
    let (plain2, secret2) = (field(&out, "client secret:"), field(&out, "secret id:"));
    assert_ne!(plain2, plain);
    let creds = s.client_credentials("acme", &id).await.unwrap().unwrap();
    assert_eq!(creds.secrets.len(), 2);
    assert!(creds
        .secrets
        .iter()
        .any(|x| x.id == secret2 && x.hash == credentials::secret_hash(&plain2)));
    let out = command(&m, &["client", "revoke-secret", "acme", &id, &secret_id])
        .await
        .unwrap();
    assert!(out.contains("revoked"), "{out}");
    assert_eq!(
        s.client_credentials("acme", &id)
            .await
            .unwrap()
            .unwrap()
            .secrets
            .len(),
        1
    );
    assert!(
        command(&m, &["client", "revoke-secret", "acme", &id, &secret_id])
            .await
            .unwrap_err()
            .contains("no secret")
    );

    // Refusals, each saying why, nothing written.
    for (args, says) in [
        (
            vec!["client", "create", "acme", "--days", "100"],
            "365 to 1095",
        ),
        (
            vec!["client", "create", "acme", "--days", "1096"],
            "365 to 1095",
        ),
        (vec!["client", "create", "Acme"], "not a valid tenant"),
        (vec!["client", "create", "nobody"], "does not exist"),
        (
            vec!["client", "rotate", "acme", "nosuchclient"],
            "no client",
        ),
        (vec!["client", "rotate", "acme", "a#b"], "not a client id"),
        (
            vec!["client", "revoke", "acme", "nosuchclient"],
            "no client",
        ),
        (
            vec![
                "wif",
                "set",
                "acme",
                "--issuer",
                "i",
                "--subject",
                "s",
                "--audience",
                "a",
                "--jwks-url",
                "http://example.com/keys",
            ],
            "http",
        ),
        (
            vec![
                "wif",
                "set",
                "acme",
                "--issuer",
                "i",
                "--subject",
                "s",
                "--audience",
                "a",
            ],
            "--jwks-url",
        ),
        (vec!["wif", "remove", "acme"], "no WIF trust"),
    ] {
        let e = command(&m, &args).await.unwrap_err();
        assert!(e.contains(says), "{args:?}: {e}");
    }
    assert_eq!(s.list_clients("acme").await.unwrap().len(), 1);

    let out = command(&m, &["client", "revoke", "acme", &id])
        .await
        .unwrap();
    assert!(out.contains("within"), "{out}");
    assert!(s.oauth_client("acme", &id).await.unwrap().unwrap().revoked);
    assert!(command(&m, &["client", "list", "acme"])
        .await
        .unwrap()
        .contains("revoked"));
    assert!(command(&m, &["client", "rotate", "acme", &id])
        .await
        .unwrap_err()
        .contains("revoked"));

    let iss = "https://login.microsoftonline.com/ce5f061f-abe6-4e40-9615-301f87bcb7f0/v2.0";
    let jwks = "https://login.microsoftonline.com/ce5f061f-abe6-4e40-9615-301f87bcb7f0/discovery/v2.0/keys";
    command(
        &m,
        &[
            "wif",
            "set",
            "acme",
            "--issuer",
            iss,
            "--subject",
            "sub-1",
            "--audience",
            "api://app",
            "--jwks-url",
            jwks,
        ],
    )
    .await
    .unwrap();
    let shown = command(&m, &["wif", "show", "acme"]).await.unwrap();
    assert!(
        shown.contains(iss)
            && shown.contains("sub-1")
            && shown.contains("api://app")
            && shown.contains(jwks),
        "{shown}"
    );
    assert!(command(&m, &["wif", "remove", "acme"])
        .await
        .unwrap()
        .contains("removed"));
    assert!(command(&m, &["wif", "show", "acme"])
        .await
        .unwrap()
        .contains("no WIF trust"));
    // The base URL's directory: `default`, without registration.
    let out = command(&m, &["client", "create", "default"]).await.unwrap();
    assert!(out.contains("<server>/oauth2/token"), "{out}");
}

mod admin {
    use super::*;
    store_tests!(admin_commands);
}

/// The `scim-admin` binary itself, against moto's DynamoDB API (`SCIM_DYNAMODB_ENDPOINT`, as against AWS):
/// a client's secret is printed once and only its hash is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_admin_binary_prints_a_secret_once() {
    use std::process::Command;
    let dir = scim_tests::local_bin_dir();
    let s = fresh_store(Engine::Moto).await;
    s.create_tenant("acme", "x").await.unwrap();
    let admin = |args: &[&str]| {
        let out = Command::new(dir.join("scim-admin"))
            .args(args)
            .env("SCIM_DYNAMODB_ENDPOINT", scim_tests::endpoint(Engine::Moto))
            .env("SCIM_TABLE", s.table())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("run scim-admin");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, out, err) = admin(&["client", "create", "acme"]);
    assert!(ok, "{err}");
    let (id, plain) = (field(&out, "client id:"), field(&out, "client secret:"));
    assert_eq!(
        s.client_credentials("acme", &id)
            .await
            .unwrap()
            .unwrap()
            .secrets[0]
            .hash,
        credentials::secret_hash(&plain)
    );
    let (ok, listed, err) = admin(&["client", "list", "acme"]);
    assert!(
        ok && listed.contains(&id) && !listed.contains(&plain),
        "{listed}{err}"
    );
    let (ok, _, err) = admin(&["client", "create", "acme", "--days", "30"]);
    assert!(!ok && err.contains("365 to 1095"), "{err}");
    // A setup link: its URL (with its secret) printed once, on the origin given.
    let (ok, out, err) = admin(&[
        "link",
        "create",
        "acme",
        "shareable",
        "--url",
        "https://scim.vendor.example",
    ]);
    assert!(
        ok && out.contains("url:     https://scim.vendor.example/setup/acme_"),
        "{out}{err}"
    );
    let (ok, listed, err) = admin(&["link", "list", "acme"]);
    let url = field(&out, "url:");
    assert!(
        ok && listed.contains("shareable\tlive")
            && !listed.contains(url.rsplit_once('.').unwrap().1),
        "{listed}{err}"
    );
    let (ok, _, err) = admin(&["link", "create", "acme", "shareable", "--days", "99"]);
    assert!(!ok && err.contains("1 to 30 days"), "{err}");
    let (ok, help, _) = admin(&["--help"]);
    assert!(
        ok && help.contains("client rotate")
            && help.contains("wif set")
            && help.contains("link create <tenant> in_app|shareable"),
        "{help}"
    );
}
