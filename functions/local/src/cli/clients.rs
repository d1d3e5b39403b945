//! OAuth for the local server and `scim-admin`: the signing key ring `scim-local` keeps in its data
//! directory ([`local_oauth`]), and the `client …` and `wif …` commands of `scim-admin` ([`command`]),
//! which work on any store (the local engine or AWS) and print a new secret exactly once.
//!
//! Imports `scim_core::oauth` (the key ring, settings) and `scim_core::manage` (every command is a
//! management operation: the same code the management API runs).

use scim_core::auth::{valid_tenant, DEFAULT_TENANT};
use scim_core::manage::{ManageError, Manager, Principal};
use scim_core::oauth::assertion::{Jwks, JwksSettings, WifTrust};
use scim_core::oauth::credentials::{self, DEFAULT_SECRET_DAYS, MAX_SECRET_DAYS, MIN_SECRET_DAYS};
use scim_core::oauth::signing::KeyRing;
use scim_core::oauth::{OAuth, OAuthSettings, KEYS_FILE, KEYS_VAR};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The OAuth state of `scim-local`: the key ring from `SCIM_OAUTH_SIGNING_KEYS`, else the one kept in
/// `data_dir/oauth-keys` (made at first start, mode 0600, never printed), and the settings from the
/// environment (out-of-range values refuse the start).
pub fn local_oauth(data_dir: &Path) -> Result<Arc<OAuth>, String> {
    let ring = match std::env::var(KEYS_VAR) {
        Ok(text) => KeyRing::parse(&text).map_err(|e| format!("{KEYS_VAR}: {e}"))?,
        Err(_) => {
            let file = data_dir.join(KEYS_FILE);
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(_) => {
                    let kid = format!("k{}", unix_now());
                    let t = KeyRing::generate_text(&kid);
                    crate::engine::private_dir::create_private(&file, &t)
                        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
                    t
                }
            };
            KeyRing::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?
        }
    };
    let settings = OAuthSettings::from_env()?;
    Ok(Arc::new(OAuth::new(
        ring,
        settings,
        Jwks::with_settings(JwksSettings::from_env()),
    )))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The usage of the commands, for `scim-admin --help`.
pub const HELP: &str = "  scim-admin [--aws] client create <tenant> [--label <text>] [--days <365-1095>]
  scim-admin [--aws] client list <tenant>
  scim-admin [--aws] client rotate <tenant> <client-id> [--days <365-1095>]   (adds a secret)
  scim-admin [--aws] client revoke-secret <tenant> <client-id> <secret-id>
  scim-admin [--aws] client revoke <tenant> <client-id>
  scim-admin [--aws] wif set <tenant> --issuer <iss> --subject <sub> --audience <aud> --jwks-url <url>
  scim-admin [--aws] wif show <tenant>
  scim-admin [--aws] wif remove <tenant>
";

/// The tenant argument of a client or wif command: a tenant id, or `default` (the base URL's directory,
/// whose token endpoint is `<server>/oauth2/token`).
fn tenant(words: &[&str], i: usize) -> Result<String, String> {
    let t = *words.get(i).ok_or("missing <tenant>; see --help")?;
    if t == DEFAULT_TENANT || valid_tenant(t) {
        Ok(t.to_string())
    } else {
        Err(format!("'{t}' is not a valid tenant id (lower-case letters, digits, '-', up to 63 characters), nor 'default'"))
    }
}

fn option<'a>(words: &[&'a str], name: &str) -> Result<Option<&'a str>, String> {
    match words.iter().position(|w| *w == name) {
        None => Ok(None),
        Some(i) => words
            .get(i + 1)
            .copied()
            .filter(|v| !v.starts_with("--"))
            .map(Some)
            .ok_or_else(|| format!("{name} needs a value")),
    }
}

fn days(words: &[&str]) -> Result<u32, String> {
    match option(words, "--days")? {
        None => Ok(DEFAULT_SECRET_DAYS),
        Some(d) => d.parse().ok().filter(|d| (MIN_SECRET_DAYS..=MAX_SECRET_DAYS).contains(d)).ok_or_else(|| {
            format!("--days must be {MIN_SECRET_DAYS} to {MAX_SECRET_DAYS} (a client secret lives one to three years), not {d}")
        }),
    }
}

fn client_id<'a>(words: &[&'a str], i: usize) -> Result<&'a str, String> {
    let c = *words
        .get(i)
        .ok_or("missing <client-id>; see `client list`")?;
    if !credentials::valid_client_id(c) {
        return Err(format!("'{c}' is not a client id"));
    }
    Ok(c)
}

fn endpoint_hint(tenant: &str) -> String {
    if tenant == DEFAULT_TENANT {
        "<server>/oauth2/token".into()
    } else {
        format!("<server>/{tenant}/oauth2/token")
    }
}

/// Who runs a command, in the tenant's audit trail: `scim-admin:<login name>`.
pub fn cli_principal() -> Principal {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    Principal(format!("scim-admin:{user}"))
}

/// Runs one `client …` or `wif …` command (`words` without `--aws`) through the management operations
/// (`scim_core::manage::Manager`, the same the management API runs); returns what to print. A new secret
/// appears in the output once and is stored only as its hash.
pub async fn command(m: &Manager, words: &[&str]) -> Result<String, String> {
    let p = cli_principal();
    let err = |e: ManageError| e.message;
    match words {
        ["client", "create", ..] => {
            let t = tenant(words, 2)?;
            let days = days(words)?;
            let label = option(words, "--label")?.unwrap_or("");
            let s = m
                .create_client(&p, &t, label, Some(days))
                .await
                .map_err(err)?;
            Ok(format!(
                "client id:     {}\nclient secret: {}\nsecret id:     {}\nexpires:       {}\ntoken URL:     {}\n(the secret is shown once: only its hash is stored)\n",
                s.client_id,
                s.secret,
                s.secret_id,
                s.expires,
                endpoint_hint(&t)
            ))
        }
        ["client", "list", ..] => {
            let t = tenant(words, 2)?;
            let creds = m.credentials(&t).await.map_err(err)?;
            let mut out = String::new();
            let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
            for c in creds["clients"].as_array().into_iter().flatten() {
                let state = if c["revoked"] == true {
                    format!("revoked {}", text(&c["revokedAt"]))
                } else {
                    "active".into()
                };
                out.push_str(&format!(
                    "client {}\t{}\tcreated {}\t{}\n",
                    text(&c["id"]),
                    state,
                    text(&c["created"]),
                    text(&c["label"])
                ));
                for s in c["secrets"].as_array().into_iter().flatten() {
                    let live = if s["expired"] == true {
                        " (expired)"
                    } else {
                        ""
                    };
                    let used = match s["lastUsed"].as_str() {
                        Some(u) => format!("last used {u}"),
                        None => "never used".into(),
                    };
                    out.push_str(&format!(
                        "  secret {}\tcreated {}\texpires {}{live}\t{used}\n",
                        text(&s["id"]),
                        text(&s["created"]),
                        text(&s["expires"])
                    ));
                }
            }
            Ok(out)
        }
        ["client", "rotate", ..] => {
            let t = tenant(words, 2)?;
            let c = client_id(words, 3)?;
            let s = m
                .rotate_client(&p, &t, c, Some(days(words)?))
                .await
                .map_err(err)?;
            Ok(format!(
                "client secret: {}\nsecret id:     {}\nexpires:       {}\n(shown once. The client's other secrets stay valid until you revoke them: client revoke-secret {t} {c} <secret-id>)\n",
                s.secret, s.secret_id, s.expires
            ))
        }
        ["client", "revoke-secret", ..] => {
            let t = tenant(words, 2)?;
            let c = client_id(words, 3)?;
            let s = *words
                .get(4)
                .ok_or("missing <secret-id>; see `client list`")?;
            if !credentials::valid_client_id(s) {
                return Err(format!("'{s}' is not a secret id"));
            }
            m.revoke_secret(&p, &t, c, s).await.map_err(err)?;
            Ok(format!(
                "secret {s} of client {c} revoked: it gives no new token from now on\n"
            ))
        }
        ["client", "revoke", ..] => {
            let t = tenant(words, 2)?;
            let c = client_id(words, 3)?;
            m.revoke_client(&p, &t, c).await.map_err(err)?;
            Ok(format!(
                "client {c} revoked: no new token from now on; its access tokens stop working within {} s\n",
                m.settings.client_check.as_secs()
            ))
        }
        ["wif", "set", ..] => {
            let t = tenant(words, 2)?;
            let need = |name: &str| -> Result<String, String> {
                option(words, name)?
                    .map(str::to_string)
                    .ok_or_else(|| format!("wif set needs {name}"))
            };
            let trust = WifTrust {
                issuer: need("--issuer")?,
                subject: need("--subject")?,
                audience: need("--audience")?,
                jwks_url: need("--jwks-url")?,
            };
            m.set_wif(&p, &t, &trust).await.map_err(err)?;
            Ok(format!(
                "WIF trust of {t} set: assertions from {} for {} are accepted at {}\n",
                trust.issuer,
                trust.audience,
                endpoint_hint(&t)
            ))
        }
        ["wif", "show", ..] => {
            let t = tenant(words, 2)?;
            match m.wif(&t).await.map_err(err)? {
                None => Ok(format!("tenant {t} has no WIF trust\n")),
                Some(w) => Ok(format!(
                    "issuer:   {}\nsubject:  {}\naudience: {}\njwks url: {}\n",
                    w.issuer, w.subject, w.audience, w.jwks_url
                )),
            }
        }
        ["wif", "remove", ..] => {
            let t = tenant(words, 2)?;
            m.remove_wif(&p, &t).await.map_err(err)?;
            Ok(format!(
                "WIF trust of {t} removed: no assertion gets a token from now on\n"
            ))
        }
        _ => Err("unknown command; see --help".into()),
    }
}
