//! Reaching a running `scim-local` from another process of the same user: the layout of its data
//! directory (`SCIM_DATA_DIR`, default `./.scim-data`: the bearer token, the embedded engine's key and the
//! address of the engine's signed loopback listener) and a store that signs every call with that key.
//!
//! `scim-local` writes these files; `scim-admin` and the Lambda handlers under `cargo lambda watch`
//! (`SCIM_LOCAL_ENGINE=1`, read by [`crate::bootstrap`]) read them. The handlers reach the engine over
//! loopback HTTP like any DynamoDB API, so no Lambda function depends on the engine (dynoxide) itself.
//! Nothing here ever prints or logs the token or the key. Imports `store` (the DynamoDB client) only.

use crate::store::dynamo::DynamoStore;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The variable naming the data directory, shared by `scim-local`, `scim-admin` and the handlers.
pub const DATA_DIR_VAR: &str = "SCIM_DATA_DIR";
/// The data directory when `SCIM_DATA_DIR` is unset (relative to the working directory).
pub const DEFAULT_DATA_DIR: &str = ".scim-data";
/// The bearer token `scim-local` generated at its first start (mode 0600).
pub const TOKEN_FILE: &str = "token";
/// The secret key the engine's listener checks signatures against (mode 0600).
pub const KEY_FILE: &str = "engine-key";
/// `http://127.0.0.1:<port>`: where the running server's engine listens.
pub const ENDPOINT_FILE: &str = "endpoint";
/// The access key id of the engine's key (not a secret; the secret is [`KEY_FILE`]'s content).
pub const ACCESS_KEY_ID: &str = "scim-local";
/// The switch that sends a Lambda handler to the running `scim-local`'s engine (`cargo lambda watch`).
pub const SWITCH_VAR: &str = "SCIM_LOCAL_ENGINE";

/// `SCIM_DATA_DIR`, or `./.scim-data`.
pub fn data_dir() -> PathBuf {
    PathBuf::from(
        std::env::var(DATA_DIR_VAR)
            .ok()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
    )
}

/// The engine's secret key kept in `dir`, checked for shape (a key `scim-local` made is 64 hex digits).
pub fn read_engine_key(dir: &Path) -> Result<String, String> {
    let file = dir.join(KEY_FILE);
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read the engine key {}: {e}", file.display()))?;
    let secret = text.trim();
    if secret.len() < 32 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the engine key {} is malformed (delete it and restart scim-local)",
            file.display()
        ));
    }
    Ok(secret.to_string())
}

/// The bearer token `scim-local` keeps in `dir`.
pub fn read_token(dir: &Path) -> Result<String, String> {
    let file = dir.join(TOKEN_FILE);
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read the token {}: {e}", file.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("the token file {} is empty", file.display()));
    }
    Ok(token.to_string())
}

/// The engine of the `scim-local` that runs on a data directory: its listener's address and key.
#[derive(Clone)]
pub struct RunningEngine {
    endpoint: String,
    secret: String,
}

impl std::fmt::Debug for RunningEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEngine")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl RunningEngine {
    /// The engine `scim-local` published in `dir` (its `endpoint` and `engine-key` files). Whether anyone
    /// still listens there is for the first call to tell.
    pub fn find(dir: &Path) -> Result<Self, String> {
        let file = dir.join(ENDPOINT_FILE);
        let text = std::fs::read_to_string(&file).map_err(|e| {
            format!("no running scim-local found: cannot read {} ({e}); start it first (cargo run --release -p scim-local)", file.display())
        })?;
        let endpoint = text.trim();
        if !endpoint.starts_with("http://") || endpoint.len() <= "http://".len() {
            return Err(format!(
                "{} does not hold an http:// address",
                file.display()
            ));
        }
        Ok(RunningEngine {
            endpoint: endpoint.to_string(),
            secret: read_engine_key(dir)?,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A store on `table` that reaches the engine through its listener, signing with its key.
    pub fn store(&self, table: impl Into<String>, call_timeout: Duration) -> DynamoStore {
        DynamoStore::local_with_credentials(
            &self.endpoint,
            table,
            call_timeout,
            ACCESS_KEY_ID,
            &self.secret,
        )
    }
}

/// The data directory of the running `scim-local` a Lambda handler should use, when `SCIM_LOCAL_ENGINE`
/// is on (`cargo lambda watch`, configured in the workspace's `Cargo.toml`); `None` otherwise. Refused on
/// AWS Lambda itself: a deployed function never reads local files for its store or token.
pub fn handler_data_dir() -> Result<Option<PathBuf>, String> {
    handler_data_dir_from(&|name| std::env::var(name).ok())
}

fn handler_data_dir_from(var: &dyn Fn(&str) -> Option<String>) -> Result<Option<PathBuf>, String> {
    let on = match var(SWITCH_VAR).as_deref().map(str::trim) {
        None | Some("") | Some("0") | Some("false") | Some("no") | Some("off") => false,
        Some("1") | Some("true") | Some("yes") | Some("on") => true,
        Some(other) => return Err(format!("{SWITCH_VAR} must be 1 or 0, not {other:?}")),
    };
    if !on {
        return Ok(None);
    }
    // Set by AWS Lambda (`AWS_Lambda_provided.al2023`), never by `cargo lambda watch`.
    if var("AWS_EXECUTION_ENV").is_some_and(|e| e.starts_with("AWS_Lambda")) {
        return Err(format!("{SWITCH_VAR} is for `cargo lambda watch` only: remove it from the deployed function's environment"));
    }
    let dir = var(DATA_DIR_VAR)
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
    Ok(Some(PathBuf::from(dir)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_switch_decides_and_the_data_dir_follows_scim_local() {
        assert_eq!(handler_data_dir_from(&env(&[])).unwrap(), None);
        assert_eq!(
            handler_data_dir_from(&env(&[(SWITCH_VAR, "0")])).unwrap(),
            None
        );
        assert_eq!(
            handler_data_dir_from(&env(&[(SWITCH_VAR, "1")])).unwrap(),
            Some(PathBuf::from(".scim-data"))
        );
        assert_eq!(
            handler_data_dir_from(&env(&[(SWITCH_VAR, "true"), (DATA_DIR_VAR, "/srv/d")])).unwrap(),
            Some(PathBuf::from("/srv/d"))
        );
        assert!(handler_data_dir_from(&env(&[(SWITCH_VAR, "maybe")])).is_err());
        // The data directory alone does not switch anything on.
        assert_eq!(
            handler_data_dir_from(&env(&[(DATA_DIR_VAR, "/srv/d")])).unwrap(),
            None
        );
    }

    #[test]
    fn refused_on_aws_lambda() {
        let e = handler_data_dir_from(&env(&[
            (SWITCH_VAR, "1"),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
        ]))
        .unwrap_err();
        assert!(e.contains("for `cargo lambda watch` only"), "{e}");
        // Off stays off on AWS.
        assert_eq!(
            handler_data_dir_from(&env(&[("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")]))
                .unwrap(),
            None
        );
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("scim-local-engine-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn finds_the_published_engine_and_never_shows_its_key() {
        let d = temp_dir("find");
        let err = RunningEngine::find(&d).unwrap_err();
        assert!(
            err.contains("no running scim-local") && err.contains("endpoint"),
            "{err}"
        );
        std::fs::write(d.join(ENDPOINT_FILE), "http://127.0.0.1:40123\n").unwrap();
        assert!(RunningEngine::find(&d).unwrap_err().contains("engine key"));
        std::fs::write(d.join(KEY_FILE), "short").unwrap();
        assert!(RunningEngine::find(&d).unwrap_err().contains("malformed"));
        let secret = "ab".repeat(32);
        std::fs::write(d.join(KEY_FILE), format!("{secret}\n")).unwrap();
        let engine = RunningEngine::find(&d).unwrap();
        assert_eq!(engine.endpoint(), "http://127.0.0.1:40123");
        assert!(
            !format!("{engine:?}").contains(&secret),
            "Debug never shows the key"
        );
        std::fs::write(d.join(ENDPOINT_FILE), "127.0.0.1:40123").unwrap();
        assert!(RunningEngine::find(&d).unwrap_err().contains("http://"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn reads_the_kept_token() {
        let d = temp_dir("token");
        assert!(read_token(&d).is_err());
        std::fs::write(d.join(TOKEN_FILE), "\n").unwrap();
        assert!(read_token(&d).unwrap_err().contains("empty"));
        std::fs::write(d.join(TOKEN_FILE), "0123456789abcdef0123\n").unwrap();
        assert_eq!(read_token(&d).unwrap(), "0123456789abcdef0123");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
