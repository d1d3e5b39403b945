//! Every rule of the module, one case each (keys from `testing`, preloaded into the cache; the HTTP
//! fetching, refetch and rate limit are tested against a real server in `tests/tests/wif_assertion.rs`).

use super::testing::{self, TestKey};
use super::*;
use serde_json::json;
use std::sync::OnceLock;

const URL: &str =
    "https://login.microsoftonline.com/ce5f061f-abe6-4e40-9615-301f87bcb7f0/discovery/v2.0/keys";

/// `k1` is in the JWKS; `rogue` is not (same `kid` given to it in tests that forge).
fn keys() -> &'static (TestKey, TestKey) {
    static KEYS: OnceLock<(TestKey, TestKey)> = OnceLock::new();
    KEYS.get_or_init(|| (TestKey::generate("k1"), TestKey::generate("k1")))
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_772_175_916)
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn trust() -> WifTrust {
    testing::trust(URL)
}

fn jwks() -> Jwks {
    let j = Jwks::new();
    j.preload(
        URL,
        testing::jwks_document([&keys().0]).to_string().as_bytes(),
    )
    .unwrap();
    j
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn verify_at(token: &str, trust: &WifTrust, at: SystemTime) -> Result<VerifiedAssertion, Rejected> {
    let result = run(jwks().verify(token, trust, at));
    if let Err(e) = &result {
        // The reason is for logs: it must never carry the token or a part of it.
        let shown = format!("{e} {e:?}");
        for part in token.split('.').filter(|p| p.len() > 3) {
            assert!(!shown.contains(part), "rejection {shown:?} shows the token");
        }
    }
    result
}

fn verify(token: &str) -> Result<VerifiedAssertion, Rejected> {
    verify_at(token, &trust(), now())
}

/// A token signed by `k1` with Entra's header and the claims changed by `edit`.
fn with_claims(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut c = testing::claims(&trust(), now());
    edit(c.as_object_mut().unwrap());
    keys().0.sign(&testing::header("k1"), &c)
}

fn header_set(name: &str, value: Value) -> String {
    with_header(|h| {
        h.insert(name.into(), value);
    })
}

fn header_without(name: &str) -> String {
    with_header(|h| {
        h.remove(name);
    })
}

fn claim_set(name: &str, value: Value) -> String {
    with_claims(|c| {
        c.insert(name.into(), value);
    })
}

fn claim_without(name: &str) -> String {
    with_claims(|c| {
        c.remove(name);
    })
}

fn with_header(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut h = testing::header("k1");
    edit(h.as_object_mut().unwrap());
    keys().0.sign(&h, &testing::claims(&trust(), now()))
}

#[test]
fn entras_assertion_is_accepted() {
    let v = verify(&with_claims(|_| {})).expect("valid");
    assert_eq!(v.iss, trust().issuer);
    assert_eq!(v.sub, trust().subject);
    assert_eq!(v.aud, trust().audience);
    assert_eq!(v.kid, "k1");
    assert_eq!(secs(v.exp), secs(now()) + 3900);
    assert_eq!(
        v.tid.as_deref(),
        Some("ce5f061f-abe6-4e40-9615-301f87bcb7f0")
    );
    assert_eq!(
        v.oid.as_deref(),
        Some("d2f8ee76-c549-45b8-a143-f5b640669704")
    );
}

#[test]
fn algorithm_must_be_rs256() {
    let (k1, _) = keys();
    let claims = testing::claims(&trust(), now());
    // alg none, unsigned and with a (meaningless) signature
    assert_eq!(
        verify(&testing::unsigned(
            &json!({"alg": "none", "kid": "k1"}),
            &claims
        )),
        Err(Rejected::Algorithm)
    );
    assert_eq!(
        verify(&k1.sign(&json!({"alg": "none", "kid": "k1", "typ": "JWT"}), &claims)),
        Err(Rejected::Algorithm)
    );
    // even an unsecured JWS that claims RS256 has no signature to check
    assert_eq!(
        verify(&testing::unsigned(&testing::header("k1"), &claims)),
        Err(Rejected::Algorithm)
    );
    // HMAC keyed with the public key (as PEM, as the JWK's modulus), and the other HMACs
    for alg in ["HS256", "HS384", "HS512"] {
        let h = json!({"alg": alg, "kid": "k1", "typ": "JWT"});
        assert_eq!(
            verify(&testing::sign_hs256(
                k1.public_pem().as_bytes(),
                &h,
                &claims
            )),
            Err(Rejected::Algorithm),
            "{alg}"
        );
    }
    let n = k1.jwk()["n"].as_str().unwrap().to_string();
    assert_eq!(
        verify(&testing::sign_hs256(
            n.as_bytes(),
            &json!({"alg": "HS256", "kid": "k1"}),
            &claims
        )),
        Err(Rejected::Algorithm)
    );
    // every other algorithm, a lower-case RS256, a missing or non-string alg — even with a valid RS256 signature
    for alg in [
        json!("RS384"),
        json!("RS512"),
        json!("PS256"),
        json!("ES256"),
        json!("EdDSA"),
        json!("rs256"),
        json!("RS256 "),
        json!(["RS256"]),
        json!(256),
        Value::Null,
    ] {
        let token = header_set("alg", alg.clone());
        assert_eq!(verify(&token), Err(Rejected::Algorithm), "{alg}");
    }
    let token = header_without("alg");
    assert_eq!(verify(&token), Err(Rejected::Algorithm));
}

#[test]
fn kid_must_be_a_string() {
    for kid in [
        json!(1),
        json!(["k1"]),
        json!({"kid": "k1"}),
        json!(""),
        json!("k".repeat(MAX_KID_LEN + 1)),
        Value::Null,
    ] {
        let token = header_set("kid", kid.clone());
        assert_eq!(verify(&token), Err(Rejected::MissingKid), "{kid}");
    }
    let token = header_without("kid");
    assert_eq!(verify(&token), Err(Rejected::MissingKid));
}

#[test]
fn typ_is_jwt_or_absent_and_crit_is_refused() {
    assert!(verify(&header_without("typ")).is_ok());
    assert!(verify(&header_set("typ", json!("jwt"))).is_ok());
    for typ in [json!("at+jwt"), json!("JWE"), json!(1)] {
        let token = header_set("typ", typ.clone());
        assert_eq!(verify(&token), Err(Rejected::Type), "{typ}");
    }
    let token = header_set("crit", json!(["exp"]));
    assert_eq!(verify(&token), Err(Rejected::Critical));
}

#[test]
fn keys_named_by_the_token_are_ignored() {
    // A token carrying its own key (jwk / jku / x5u) still needs the trust's key.
    let (_, rogue) = keys();
    let mut h = testing::header("k1");
    h["jwk"] = rogue.jwk();
    h["jku"] = json!("http://127.0.0.1:1/attacker-keys");
    h["x5u"] = json!("http://127.0.0.1:1/attacker-cert");
    assert_eq!(
        verify(&rogue.sign(&h, &testing::claims(&trust(), now()))),
        Err(Rejected::BadSignature)
    );
}

#[test]
fn signature_must_be_by_the_jwks_key() {
    let (k1, rogue) = keys();
    // same kid, another key
    assert_eq!(
        verify(&rogue.sign(&testing::header("k1"), &testing::claims(&trust(), now()))),
        Err(Rejected::BadSignature)
    );
    // claims changed after signing
    let good = with_claims(|_| {});
    let parts: Vec<&str> = good.split('.').collect();
    let mut c = testing::claims(&trust(), now());
    c["exp"] = json!(secs(now()) + 7200);
    let altered = format!(
        "{}.{}.{}",
        parts[0],
        testing::b64(c.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(verify(&altered), Err(Rejected::BadSignature));
    // a signature cut short, or another token's signature
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig.pop();
    assert_eq!(
        verify(&format!("{}.{}.{}", parts[0], parts[1], testing::b64(&sig))),
        Err(Rejected::BadSignature)
    );
    // a signature in a non-canonical base64url form (256 bytes leave 4 bits of the last character, which
    // must be zero; `B` sets one) is not even read
    let sig = parts[2];
    assert_eq!(
        verify(&format!(
            "{}.{}.{}B",
            parts[0],
            parts[1],
            &sig[..sig.len() - 1]
        )),
        Err(Rejected::Malformed)
    );
    let other = k1.sign(&testing::header("k1"), &json!({"other": true}));
    assert_eq!(
        verify(&format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            other.rsplit('.').next().unwrap()
        )),
        Err(Rejected::BadSignature)
    );
}

#[test]
fn unknown_kid_is_refused_without_a_fetch_inside_the_rate_limit() {
    // The preload counts as the last fetch, so the unknown kid is not fetched (no server exists at URL).
    let (_, rogue) = keys();
    let stranger = rogue.with_kid("k2");
    let token = stranger.sign(&testing::header("k2"), &testing::claims(&trust(), now()));
    assert_eq!(verify(&token), Err(Rejected::UnknownKey));
}

#[test]
fn issuer_subject_audience_are_compared_exactly() {
    let t = trust();
    let cases: Vec<(&str, Value, Rejected)> = vec![
        ("iss", json!(format!("{}/", t.issuer)), Rejected::Issuer),
        ("iss", json!(t.issuer.to_uppercase()), Rejected::Issuer),
        (
            "iss",
            json!("https://sts.windows.net/ce5f061f-abe6-4e40-9615-301f87bcb7f0/"),
            Rejected::Issuer,
        ),
        ("iss", json!([t.issuer]), Rejected::Issuer),
        ("sub", json!(t.subject.to_uppercase()), Rejected::Subject),
        ("sub", json!(""), Rejected::Subject),
        (
            "aud",
            json!(format!("{}/.default", t.audience)),
            Rejected::Audience,
        ),
        ("aud", json!([]), Rejected::Audience),
        ("aud", json!(["api://other"]), Rejected::Audience),
        ("aud", json!([[t.audience]]), Rejected::Audience),
        ("aud", json!({"aud": t.audience}), Rejected::Audience),
    ];
    for (claim, value, want) in cases {
        let token = claim_set(claim, value.clone());
        assert_eq!(verify(&token), Err(want), "{claim} = {value}");
    }
    for claim in ["iss", "sub", "aud"] {
        let token = claim_without(claim);
        assert!(verify(&token).is_err(), "missing {claim}");
    }
}

#[test]
fn audience_may_be_an_array() {
    let aud = trust().audience;
    for value in [
        json!([aud]),
        json!(["api://other", aud]),
        json!([1, aud, null]),
    ] {
        let token = claim_set("aud", value.clone());
        assert_eq!(verify(&token).expect("array with the audience").aud, aud);
    }
}

#[test]
fn expiry_is_required_and_checked_with_the_skew() {
    let skew = CLOCK_SKEW.as_secs();
    for exp in [
        Value::Null,
        json!("1772179816"),
        json!(1772179816.5),
        json!(true),
    ] {
        let token = claim_set("exp", exp.clone());
        assert_eq!(verify(&token), Err(Rejected::MissingExpiry), "exp {exp}");
    }
    let token = claim_without("exp");
    assert_eq!(verify(&token), Err(Rejected::MissingExpiry));
    // valid until exp + skew (exclusive)
    let token = with_claims(|_| {});
    let exp = now() + Duration::from_secs(3900);
    assert!(verify_at(&token, &trust(), exp).is_ok());
    assert!(verify_at(&token, &trust(), exp + Duration::from_secs(skew - 1)).is_ok());
    assert_eq!(
        verify_at(&token, &trust(), exp + Duration::from_secs(skew)),
        Err(Rejected::Expired)
    );
    assert_eq!(
        verify_at(&token, &trust(), exp + Duration::from_secs(86_400)),
        Err(Rejected::Expired)
    );
}

#[test]
fn not_before_and_issued_at_are_checked_with_the_skew() {
    let skew = CLOCK_SKEW.as_secs();
    let t = secs(now());
    // nbf up to now + skew is accepted; one second more is not
    let token = with_claims(|c| {
        c.insert("nbf".into(), json!(t + skew));
        c.insert("iat".into(), json!(t));
    });
    assert!(verify(&token).is_ok());
    let token = claim_set("nbf", json!(t + skew + 1));
    assert_eq!(verify(&token), Err(Rejected::NotYetValid));
    // iat likewise
    let token = with_claims(|c| {
        c.insert("iat".into(), json!(t + skew));
        c.insert("nbf".into(), json!(t));
    });
    assert!(verify(&token).is_ok());
    let token = claim_set("iat", json!(t + skew + 1));
    assert_eq!(verify(&token), Err(Rejected::IssuedInFuture));
    // both are optional, but must be integers when present
    let token = with_claims(|c| {
        c.remove("nbf");
        c.remove("iat");
    });
    assert!(verify(&token).is_ok());
    for (claim, v) in [
        ("nbf", json!("now")),
        ("iat", json!(1.5)),
        ("nbf", Value::Null),
    ] {
        let token = claim_set(claim, v.clone());
        assert_eq!(verify(&token), Err(Rejected::BadTime), "{claim} {v}");
    }
}

#[test]
fn lifetime_is_bounded() {
    let limit = secs(now()) + MAX_LIFETIME.as_secs() + CLOCK_SKEW.as_secs();
    let token = claim_set("exp", json!(limit));
    assert!(verify(&token).is_ok());
    for (exp, want) in [
        (json!(limit + 1), Rejected::LifetimeTooLong),
        (json!(i64::MAX), Rejected::LifetimeTooLong),
        (json!(u64::MAX), Rejected::MissingExpiry),
    ] {
        assert_eq!(
            verify(&claim_set("exp", exp.clone())),
            Err(want),
            "exp {exp}"
        );
    }
}

#[test]
fn length_is_capped_before_parsing() {
    // A valid token padded (with an extra claim) to the largest size under the cap is accepted; one
    // byte of filler more and it is refused.
    let sized = |filler: usize| claim_set("filler", json!("x".repeat(filler)));
    let mut filler = (MAX_ASSERTION_BYTES - sized(0).len()) * 3 / 4 - 8;
    while sized(filler + 1).len() <= MAX_ASSERTION_BYTES {
        filler += 1;
    }
    let fits = sized(filler);
    assert!(
        fits.len() <= MAX_ASSERTION_BYTES && fits.len() > MAX_ASSERTION_BYTES - 4,
        "{}",
        fits.len()
    );
    assert!(verify(&fits).is_ok());
    assert_eq!(verify(&sized(filler + 1)), Err(Rejected::TooLong));
    // Refused before parsing: garbage over the cap is "too long", not "malformed".
    assert_eq!(
        verify(&"a".repeat(MAX_ASSERTION_BYTES + 1)),
        Err(Rejected::TooLong)
    );
}

#[test]
fn malformed_tokens() {
    let good = with_claims(|_| {});
    let p: Vec<&str> = good.split('.').collect();
    let h = p[0];
    for token in [
        String::new(),
        "abc".into(),
        format!("{}.{}", p[0], p[1]),
        format!("{good}.x"),
        format!("{good}.x.y"),
        format!("{h}=.{}.{}", p[1], p[2]),
        format!("{}.{}+.{}", p[0], p[1], p[2]),
        format!("{}.{}.{}!", p[0], p[1], p[2]),
        format!("{}.{}.{}", testing::b64(b"not json"), p[1], p[2]),
        format!("{}.{}.{}", testing::b64(b"[1]"), p[1], p[2]),
        format!("{}.{}.{}", p[0], testing::b64(b"\"claims\""), p[2]),
        format!(".{}.{}", p[1], p[2]),
    ] {
        assert_eq!(verify(&token), Err(Rejected::Malformed), "{token}");
    }
}

#[test]
fn rejections_read_well_and_name_no_token() {
    assert_eq!(Rejected::Algorithm.to_string(), "alg is not RS256");
    assert_eq!(
        Rejected::JwksUnavailable(FetchError::Timeout).to_string(),
        "JWKS unavailable: timed out"
    );
}

#[test]
fn key_sets_keep_only_usable_rsa_signing_keys() {
    let (k1, rogue) = keys();
    let other = rogue.with_kid("k2");
    let mut skipped = vec![];
    for (field, value) in [
        ("kty", json!("EC")),
        ("use", json!("enc")),
        ("alg", json!("RS512")),
        ("kid", json!(7)),
        ("n", json!("AQAB")),
    ] {
        let mut jwk = other.jwk();
        jwk[field] = value;
        skipped.push(jwk);
    }
    let mut no_kid = other.jwk();
    no_kid.as_object_mut().unwrap().remove("kid");
    skipped.push(no_kid);
    // An answer with only unusable keys is a failed fetch (the cache keeps its keys).
    let j = Jwks::new();
    assert_eq!(
        j.preload(URL, json!({ "keys": skipped }).to_string().as_bytes()),
        Err(FetchError::NoUsableKeys)
    );
    // Beside a usable key, they are skipped; the first of two entries with one kid counts.
    let mut doc = json!({ "keys": skipped });
    doc["keys"]
        .as_array_mut()
        .unwrap()
        .extend([k1.jwk(), rogue.with_kid("k1").jwk()]);
    let j = Jwks::new();
    j.preload(URL, doc.to_string().as_bytes()).unwrap();
    assert!(run(j.verify(&with_claims(|_| {}), &trust(), now())).is_ok());
    let k2 = other.sign(&testing::header("k2"), &testing::claims(&trust(), now()));
    assert_eq!(
        run(j.verify(&k2, &trust(), now())),
        Err(Rejected::UnknownKey)
    );
    // Bounds and shape.
    let small = Jwks::with_settings(JwksSettings {
        max_keys: 2,
        ..JwksSettings::default()
    });
    assert_eq!(
        small.preload(
            URL,
            testing::jwks_document([k1, k1, k1]).to_string().as_bytes()
        ),
        Err(FetchError::TooManyKeys)
    );
    for bad in ["", "[]", "{}", "{\"keys\": {}}", "not json"] {
        assert_eq!(
            Jwks::new().preload(URL, bad.as_bytes()),
            Err(FetchError::NotJwks),
            "{bad}"
        );
    }
}

#[test]
fn trust_check() {
    let t = trust();
    assert_eq!(t.check(false), Ok(()));
    assert!(WifTrust {
        issuer: " ".into(),
        ..t.clone()
    }
    .check(false)
    .is_err());
    assert!(WifTrust {
        subject: format!("{} ", t.subject),
        ..t.clone()
    }
    .check(false)
    .is_err());
    assert!(WifTrust {
        audience: "a".repeat(2049),
        ..t.clone()
    }
    .check(false)
    .is_err());
    assert!(WifTrust {
        jwks_url: "http://login.microsoftonline.com/keys".into(),
        ..t.clone()
    }
    .check(false)
    .is_err());
    assert!(WifTrust {
        jwks_url: "http://login.microsoftonline.com/keys".into(),
        ..t.clone()
    }
    .check(true)
    .is_ok());
    let back: WifTrust = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(back, t);
}

#[test]
fn jwks_is_shareable() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Jwks>();
    shareable::<std::sync::Arc<Jwks>>();
}

/// The cache holds at most `max_urls` URLs, least recently used dropped first, and about
/// `max_cache_bytes` of keys.
#[test]
fn the_cache_is_bounded_by_urls_and_bytes() {
    let doc = testing::jwks_document([&keys().0]).to_string();
    let url = |i: usize| format!("https://login.microsoftonline.com/t{i}/discovery/v2.0/keys");
    let j = Jwks::with_settings(JwksSettings {
        max_urls: 20,
        ..JwksSettings::default()
    });
    for i in 0..20 {
        j.preload(&url(i), doc.as_bytes()).unwrap();
    }
    j.touch(&url(0)); // url(1) is now the least recently used
    for i in 20..25 {
        j.preload(&url(i), doc.as_bytes()).unwrap();
    }
    assert_eq!(j.cached().0, 20);
    assert!(j.holds(&url(0)), "recently used survives");
    for i in 1..=5 {
        assert!(!j.holds(&url(i)), "{i} dropped");
    }
    assert!(j.holds(&url(6)) && j.holds(&url(24)));
    // One 2048-bit key with its overheads: about 700 bytes; a budget of three such URLs keeps three.
    let (_, bytes) = j.cached();
    let per_url = bytes / 20;
    assert!((400..2_000).contains(&per_url), "{per_url} bytes per URL");
    let small = Jwks::with_settings(JwksSettings {
        max_cache_bytes: per_url * 3 + per_url / 2,
        ..JwksSettings::default()
    });
    for i in 0..10 {
        small.preload(&url(i), doc.as_bytes()).unwrap();
    }
    let (n, bytes) = small.cached();
    assert_eq!(n, 3, "{bytes} bytes");
    assert!(small.holds(&url(9)) && small.holds(&url(7)) && !small.holds(&url(6)));
}
