//! `Jwks::verify` against a JWKS served over real HTTP on loopback (`scim_tests::jwks`): the cache, the
//! refetch on an unknown `kid` and its rate limit, key rotation, and a JWKS endpoint that is down, slow,
//! or answers too much. No DynamoDB here: WIF verification touches no store, so there is no engine to run
//! it on twice.

use scim_core::oauth::assertion::{
    FetchError, Jwks, JwksSettings, Rejected, VerifiedAssertion, WifTrust,
};
use scim_tests::jwks::{self as kit, Behaviour, JwksServer, TestKey};
use serde_json::json;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// Two keys generated once for this test binary.
fn keys() -> &'static (TestKey, TestKey) {
    static KEYS: OnceLock<(TestKey, TestKey)> = OnceLock::new();
    KEYS.get_or_init(|| (TestKey::generate("k1"), TestKey::generate("k2")))
}

fn assertion(key: &TestKey, trust: &WifTrust) -> String {
    key.sign(
        &kit::header(&key.kid),
        &kit::claims(trust, SystemTime::now()),
    )
}

/// A JWKS server publishing `k1`, and a trust pointing at it.
async fn serve_k1() -> (JwksServer, WifTrust) {
    let server = JwksServer::start(vec![keys().0.clone()]).await;
    let trust = kit::trust(server.url());
    (server, trust)
}

/// A fresh assertion signed by `key` for `trust`, verified now.
async fn check(
    jwks: &Jwks,
    key: &TestKey,
    trust: &WifTrust,
) -> Result<VerifiedAssertion, Rejected> {
    jwks.verify(&assertion(key, trust), trust, SystemTime::now())
        .await
}

/// Fast settings for tests: short timeout and refetch interval.
fn settings(refetch_ms: u64) -> JwksSettings {
    JwksSettings {
        fetch_timeout: Duration::from_millis(500),
        refetch_interval: Duration::from_millis(refetch_ms),
        ..JwksSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_assertion_is_accepted_and_keys_are_cached() {
    let (k1, _) = keys();
    let (server, trust) = serve_k1().await;
    let jwks = Jwks::new();
    let v = check(&jwks, k1, &trust).await.expect("valid");
    assert_eq!(
        (
            v.iss.as_str(),
            v.sub.as_str(),
            v.aud.as_str(),
            v.kid.as_str()
        ),
        (
            trust.issuer.as_str(),
            trust.subject.as_str(),
            trust.audience.as_str(),
            "k1"
        )
    );
    assert_eq!(server.fetches(), 1);
    for _ in 0..5 {
        check(&jwks, k1, &trust).await.expect("valid again");
    }
    assert_eq!(
        server.fetches(),
        1,
        "a known kid is answered from the cache"
    );
    let token = assertion(k1, &trust);
    let start = Instant::now();
    for _ in 0..200 {
        jwks.verify(&token, &trust, SystemTime::now())
            .await
            .expect("valid");
    }
    eprintln!(
        "cached verify: {:?} each (this build's profile)",
        start.elapsed() / 200
    );
    let start = Instant::now();
    let _ = TestKey::generate("timing");
    eprintln!("RSA-2048 key generation: {:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_assertions_are_refused_without_fetching() {
    let (k1, _) = keys();
    let (server, trust) = serve_k1().await;
    let jwks = Jwks::new();
    let claims = kit::claims(&trust, SystemTime::now());
    let cases = [
        (
            kit::unsigned(&json!({"alg": "none", "typ": "JWT", "kid": "k1"}), &claims),
            Rejected::Algorithm,
        ),
        (
            kit::sign_hs256(
                k1.public_pem().as_bytes(),
                &json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}),
                &claims,
            ),
            Rejected::Algorithm,
        ),
        (
            k1.sign(&json!({"alg": "RS256", "typ": "JWT"}), &claims),
            Rejected::MissingKid,
        ),
        (
            k1.sign(&json!({"alg": "RS256", "kid": 1}), &claims),
            Rejected::MissingKid,
        ),
        (
            assertion(
                k1,
                &WifTrust {
                    issuer: "https://login.microsoftonline.com/another-tenant/v2.0".into(),
                    ..trust.clone()
                },
            ),
            Rejected::Issuer,
        ),
        (
            assertion(
                k1,
                &WifTrust {
                    audience: "api://another-app".into(),
                    ..trust.clone()
                },
            ),
            Rejected::Audience,
        ),
    ];
    for (token, want) in cases {
        assert_eq!(
            jwks.verify(&token, &trust, SystemTime::now()).await,
            Err(want)
        );
    }
    assert_eq!(server.fetches(), 0, "refused before any key was looked up");
    // An expired assertion, checked against the caller's clock.
    let token = assertion(k1, &trust);
    assert_eq!(
        jwks.verify(
            &token,
            &trust,
            SystemTime::now() + Duration::from_secs(3900 + 60)
        )
        .await,
        Err(Rejected::Expired)
    );
    // Another trust's key set does not verify this trust's assertions.
    let (_, k2) = keys();
    let other = JwksServer::start(vec![k2.with_kid("k1")]).await;
    let elsewhere = WifTrust {
        jwks_url: other.url().into(),
        ..trust.clone()
    };
    assert_eq!(
        jwks.verify(&token, &elsewhere, SystemTime::now()).await,
        Err(Rejected::BadSignature)
    );
    assert!(jwks.verify(&token, &trust, SystemTime::now()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_refetches_once_and_rotation_is_picked_up() {
    let (k1, k2) = keys();
    let (server, trust) = serve_k1().await;
    let jwks = Jwks::with_settings(settings(1000));
    check(&jwks, k1, &trust).await.expect("k1");
    assert_eq!(server.fetches(), 1);
    tokio::time::sleep(Duration::from_millis(1050)).await;

    // k2 before it is published: one refetch, then refused; inside the interval no further fetch.
    assert_eq!(check(&jwks, k2, &trust).await, Err(Rejected::UnknownKey));
    assert_eq!(server.fetches(), 2);
    server.add_key(k2.clone());
    assert_eq!(check(&jwks, k2, &trust).await, Err(Rejected::UnknownKey));
    assert_eq!(server.fetches(), 2, "rate-limited");

    // After the interval, the published k2 is fetched once and accepted; then it is cached.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    check(&jwks, k2, &trust).await.expect("k2 after rotation");
    check(&jwks, k2, &trust).await.expect("k2 cached");
    assert_eq!(server.fetches(), 3);

    // The rotation ends: k1 is dropped. Still cached, k1 works until the next fetch replaces the set …
    server.drop_key("k1");
    check(&jwks, k1, &trust).await.expect("k1 still cached");
    // … which an unknown kid triggers: after it, k1 is unknown.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let k3 = k2.with_kid("k3");
    assert_eq!(check(&jwks, &k3, &trust).await, Err(Rejected::UnknownKey));
    assert_eq!(server.fetches(), 4);
    assert_eq!(check(&jwks, k1, &trust).await, Err(Rejected::UnknownKey));
    check(&jwks, k2, &trust).await.expect("k2");
    assert_eq!(server.fetches(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_key_sets_are_refreshed_and_kept_when_the_refresh_fails() {
    let (k1, _) = keys();
    let (server, trust) = serve_k1().await;
    let jwks = Jwks::with_settings(JwksSettings {
        max_age: Duration::from_millis(300),
        ..settings(600)
    });
    check(&jwks, k1, &trust).await.expect("k1");
    tokio::time::sleep(Duration::from_millis(650)).await;
    check(&jwks, k1, &trust).await.expect("k1 after a refresh");
    assert_eq!(
        server.fetches(),
        2,
        "a set older than max_age is fetched again"
    );
    // The endpoint fails: the known key keeps working (Microsoft's guidance), each refresh attempt
    // rate-limited.
    server.set_behaviour(Behaviour::Status(503));
    tokio::time::sleep(Duration::from_millis(650)).await;
    check(&jwks, k1, &trust)
        .await
        .expect("stale k1 while the JWKS is down");
    check(&jwks, k1, &trust).await.expect("stale k1 again");
    assert_eq!(server.fetches(), 3);
    // An unknown kid then fails as unavailable, not as unknown.
    tokio::time::sleep(Duration::from_millis(650)).await;
    let stranger = k1.with_kid("k9");
    assert_eq!(
        check(&jwks, &stranger, &trust).await,
        Err(Rejected::JwksUnavailable(FetchError::Status(503)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_unknown_kids_is_rate_limited() {
    let (k1, k2) = keys();
    let (server, trust) = serve_k1().await;
    // A refetch interval long beside the time a burst takes to start, so that a loaded machine cannot
    // stretch one burst over two intervals. Assertions are signed before any burst (RSA signing is slow).
    let interval = 1000u128;
    let jwks = Arc::new(Jwks::with_settings(settings(interval as u64)));
    let signed: Vec<String> = (0..100)
        .map(|i| assertion(&k2.with_kid(&format!("random-{i}")), &trust))
        .collect();
    let flood = |n: usize| {
        let tasks: Vec<_> = signed[..n]
            .iter()
            .map(|token| {
                let (jwks, trust, token) = (jwks.clone(), trust.clone(), token.clone());
                tokio::spawn(async move { jwks.verify(&token, &trust, SystemTime::now()).await })
            })
            .collect();
        futures::future::join_all(tasks)
    };
    // Cold cache, 100 assertions at once: one fetch between them.
    for r in flood(100).await {
        assert_eq!(r.expect("task"), Err(Rejected::UnknownKey));
    }
    assert_eq!(server.fetches(), 1);
    // Valid assertions keep being accepted during the flood without waiting for a fetch.
    check(&jwks, k1, &trust)
        .await
        .expect("valid during the flood");
    // A flood kept up for 2.5 intervals: at most one fetch per interval started.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis((interval * 5 / 2) as u64) {
        for r in flood(20).await {
            assert!(r.expect("task").is_err());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let bound = 1 + (start.elapsed().as_millis() / interval) as usize + 1;
    assert!(
        server.fetches() <= bound,
        "{} fetches, at most {bound} allowed",
        server.fetches()
    );
    assert!(
        server.fetches() >= 2,
        "the limit lets refetches through after the interval"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_keys_do_not_wait_for_a_refetch() {
    let (k1, k2) = keys();
    let (server, trust) = serve_k1().await;
    let jwks = Arc::new(Jwks::with_settings(JwksSettings {
        fetch_timeout: Duration::from_secs(3),
        ..settings(100)
    }));
    check(&jwks, k1, &trust).await.expect("k1");
    tokio::time::sleep(Duration::from_millis(150)).await;
    // An unknown kid starts a refetch that takes a second …
    server.set_behaviour(Behaviour::SlowHeaders(Duration::from_secs(1)));
    let slow = {
        let (jwks, trust, token) = (jwks.clone(), trust.clone(), assertion(k2, &trust));
        tokio::spawn(async move { jwks.verify(&token, &trust, SystemTime::now()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // … meanwhile a known kid is answered from the cache at once.
    let start = Instant::now();
    check(&jwks, k1, &trust)
        .await
        .expect("k1 during the refetch");
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "k1 waited {:?}",
        start.elapsed()
    );
    assert_eq!(slow.await.expect("task"), Err(Rejected::UnknownKey));
    assert_eq!(server.fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_endpoint_that_is_down_or_slow_fails_within_the_timeout() {
    let (k1, _) = keys();
    let token_for = |url: &str| {
        let trust = kit::trust(url);
        (assertion(k1, &trust), trust)
    };
    // Nothing listening.
    let (token, trust) = token_for(&kit::closed_url());
    let jwks = Jwks::with_settings(settings(30_000));
    let r = jwks.verify(&token, &trust, SystemTime::now()).await;
    assert!(
        matches!(r, Err(Rejected::JwksUnavailable(FetchError::Connect(_)))),
        "{r:?}"
    );

    // Headers that never come, and a body that trickles: both cut at the timeout (500 ms).
    for behaviour in [
        Behaviour::SlowHeaders(Duration::from_secs(10)),
        Behaviour::TrickleBody(Duration::from_millis(50)),
    ] {
        let server = JwksServer::start(vec![k1.clone()]).await;
        server.set_behaviour(behaviour.clone());
        let (token, trust) = token_for(server.url());
        let jwks = Jwks::with_settings(settings(30_000));
        let start = Instant::now();
        assert_eq!(
            jwks.verify(&token, &trust, SystemTime::now()).await,
            Err(Rejected::JwksUnavailable(FetchError::Timeout)),
            "{behaviour:?}"
        );
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(450) && took < Duration::from_secs(2),
            "{behaviour:?} took {took:?}"
        );
        // Inside the refetch interval, the next assertion fails at once instead of waiting again.
        let start = Instant::now();
        assert_eq!(
            jwks.verify(&token, &trust, SystemTime::now()).await,
            Err(Rejected::UnknownKey)
        );
        assert!(start.elapsed() < Duration::from_millis(300));
        assert_eq!(server.fetches(), 1);
    }

    // An error status.
    let server = JwksServer::start(vec![k1.clone()]).await;
    server.set_behaviour(Behaviour::Status(500));
    let (token, trust) = token_for(server.url());
    assert_eq!(
        Jwks::new().verify(&token, &trust, SystemTime::now()).await,
        Err(Rejected::JwksUnavailable(FetchError::Status(500)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_broken_jwks_documents_are_refused() {
    let (k1, _) = keys();
    let (server, trust) = serve_k1().await;
    let token = assertion(k1, &trust);
    let small = || {
        Jwks::with_settings(JwksSettings {
            max_body_bytes: 8 * 1024,
            max_keys: 4,
            ..settings(30_000)
        })
    };

    // The real document fits.
    assert!(small()
        .verify(&token, &trust, SystemTime::now())
        .await
        .is_ok());
    // A document of valid keys padded past the cap, announced by Content-Length or streamed without it.
    let mut doc = kit::jwks_document([k1]);
    doc["padding"] = json!("x".repeat(8 * 1024));
    for length_header in [true, false] {
        server.set_behaviour(Behaviour::Body {
            bytes: doc.to_string().into_bytes(),
            length_header,
        });
        assert_eq!(
            small().verify(&token, &trust, SystemTime::now()).await,
            Err(Rejected::JwksUnavailable(FetchError::TooLarge)),
            "length header {length_header}"
        );
    }
    // Too many keys, not JSON, no usable key.
    let many = kit::jwks_document([k1, k1, k1, k1, k1]);
    for (body, want) in [
        (many.to_string(), FetchError::TooManyKeys),
        ("<html>sign in</html>".to_string(), FetchError::NotJwks),
        (
            json!({"keys": [{"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}]}).to_string(),
            FetchError::NoUsableKeys,
        ),
    ] {
        server.set_behaviour(Behaviour::Body {
            bytes: body.into_bytes(),
            length_header: true,
        });
        assert_eq!(
            small().verify(&token, &trust, SystemTime::now()).await,
            Err(Rejected::JwksUnavailable(want.clone())),
            "{want:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_only_for_loopback() {
    let (k1, _) = keys();
    let trust = kit::trust("http://jwks.example.com/keys");
    let r = Jwks::new()
        .verify(&assertion(k1, &trust), &trust, SystemTime::now())
        .await;
    assert!(
        matches!(r, Err(Rejected::JwksUnavailable(FetchError::UrlRefused(_)))),
        "{r:?}"
    );
}
