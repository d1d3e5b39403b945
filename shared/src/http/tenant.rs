//! Which tenant a request addresses, read from its path ([`tenant_of`]), and the absolute base URL its
//! answers name ([`base_url`]). One rule for every route: the SCIM routes (under the base path) and the
//! token endpoint (under [`TOKEN_PATH`]) both read their tenant with [`tenant_of`].
//!
//! Imports: the crate's `auth` (tenant ids) and `config`; nothing of `http`. `auth` imports nothing of
//! `http`, so there is no circle between them.

use crate::auth::{valid_tenant, DEFAULT_TENANT};
use crate::config::HttpConfig;
use axum::http::{header, HeaderMap};

/// The OAuth token endpoint's path: the base URL's directory's at `/oauth2/token`, a tenant's at
/// `/<tenant>/oauth2/token`.
pub(super) const TOKEN_PATH: &str = "/oauth2/token";

/// The tenant a path addresses under `root` (the base path, or [`TOKEN_PATH`]): the default tenant under
/// `root`, `t` under `/t<root>` for a valid tenant id `t`; None for a path that is neither (answered
/// 404). The path is read as it was sent, never percent-decoded, so `/%61<root>` is no alias of tenant
/// `a` (nor `/A<root>`). With the API at the root (empty base path) there are no tenant URLs: every
/// path is the default tenant's.
pub(super) fn tenant_of(path: &str, root: &str) -> Option<String> {
    if root.is_empty() {
        return Some(DEFAULT_TENANT.to_string());
    }
    let under = |p: &str| p == root || p.starts_with(&format!("{root}/"));
    if under(path) {
        return Some(DEFAULT_TENANT.to_string());
    }
    let rest = path.strip_prefix('/')?;
    let (first, after) = rest
        .split_once('/')
        .map(|(a, b)| (a, format!("/{b}")))
        .unwrap_or((rest, String::new()));
    (under(&after) && valid_tenant(first)).then(|| first.to_string())
}

pub(super) fn base_url(cfg: &HttpConfig, headers: &HeaderMap, tenant: &str) -> String {
    let tenant_part = if tenant == DEFAULT_TENANT {
        String::new()
    } else {
        format!("/{tenant}")
    };
    if let Some(u) = &cfg.public_url {
        let origin = u.strip_suffix(cfg.base_path.as_str()).unwrap_or(u);
        return format!("{origin}{tenant_part}{}", cfg.base_path);
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http");
    format!("{proto}://{host}{tenant_part}{}", cfg.base_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_from_path() {
        assert_eq!(
            tenant_of("/scim/v2/Users", "/scim/v2").as_deref(),
            Some(DEFAULT_TENANT)
        );
        assert_eq!(
            tenant_of("/scim/v2", "/scim/v2").as_deref(),
            Some(DEFAULT_TENANT)
        );
        assert_eq!(
            tenant_of("/acme/scim/v2/Users/1", "/scim/v2").as_deref(),
            Some("acme")
        );
        assert_eq!(tenant_of("/Acme/scim/v2/Users", "/scim/v2"), None);
        assert_eq!(tenant_of("/acme/other/Users", "/scim/v2"), None);
        assert_eq!(tenant_of("/scim/v2x/Users", "/scim/v2"), None);
        // Aliases of the base URL are no tenant: a capital, an escape, a reserved name.
        for alias in [
            "/A/scim/v2/Users",
            "/%61/scim/v2/Users",
            "/scim/scim/v2/Users",
            "/default/scim/v2/Users",
            "/x/y/scim/v2",
        ] {
            assert_eq!(tenant_of(alias, "/scim/v2"), None, "{alias}");
        }
        assert_eq!(tenant_of("/anything", "").as_deref(), Some(DEFAULT_TENANT));
    }

    #[test]
    fn the_token_endpoint_reads_its_tenant_by_the_same_rule() {
        assert_eq!(
            tenant_of("/oauth2/token", TOKEN_PATH).as_deref(),
            Some(DEFAULT_TENANT)
        );
        assert_eq!(
            tenant_of("/acme/oauth2/token", TOKEN_PATH).as_deref(),
            Some("acme")
        );
        let aliases = [
            "/%61/oauth2/token",
            "/%61cme/oauth2/token",
            "/A/oauth2/token",
        ];
        for alias in aliases
            .into_iter()
            .chain(["/default/oauth2/token", "/a/b/oauth2/token"])
        {
            assert_eq!(tenant_of(alias, TOKEN_PATH), None, "{alias}");
        }
    }

    #[test]
    fn base_url_carries_the_tenant() {
        let cfg = HttpConfig {
            public_url: Some("https://api.example.com/scim/v2".into()),
            ..HttpConfig::default()
        };
        assert_eq!(
            base_url(&cfg, &HeaderMap::new(), "acme"),
            "https://api.example.com/acme/scim/v2"
        );
        assert_eq!(
            base_url(&cfg, &HeaderMap::new(), DEFAULT_TENANT),
            "https://api.example.com/scim/v2"
        );
    }
}
