//! `scim-admin link …`: setup links to the customer's setup page (docs/setup-page.md), made, listed and
//! revoked through the management operations (`Manager::create_link`, `list_links`, `revoke_link`: the
//! same code as `POST/GET/DELETE /manage/v1/tenants/{t}/setup-links`), so each change is in the tenant's
//! audit trail as `scim-admin:<login>`. A new link's URL — which holds its secret — is printed once; only
//! its hash is stored, and `link list` never shows it.
//!
//! Imports `scim_core::manage` and `scim_core::auth` (tenant ids).

use scim_core::auth::valid_tenant;
use scim_core::manage::{ManageError, Manager};

/// The usage of the commands, for `scim-admin --help`.
pub const HELP: &str = "  scim-admin [--aws] link create <tenant> in_app|shareable [--minutes <1-60>] [--days <1-30>] [--return-url <url>] [--url <origin>]
  scim-admin [--aws] link list <tenant>
  scim-admin [--aws] link revoke <tenant> <link-id>
";

/// What `--help` says about them.
pub const ABOUT: &str = "link: setup links to the customer's setup page (docs/setup-page.md). in_app: opens once, valid
--minutes (default 5); shareable: opens until it expires (--days, default 7) or is revoked. The URL is
printed once. Its origin: --url, else SCIM_PUBLIC_URL's, else (locally) http://<SCIM_LISTEN>; with --aws,
give --url (the stack output TokenEndpoint, or https://<DomainName>).
";

/// The origin (scheme and host) a new link names: `--url` when given, else the public URL's
/// (`SCIM_PUBLIC_URL` less its base path), else, for the local server, `http://<listen address>`. With
/// `--aws` there is no local server to default to: the caller must say.
pub fn origin(
    url: Option<&str>,
    public_url: Option<&str>,
    base_path: &str,
    listen: &str,
    aws: bool,
) -> Result<String, String> {
    let check = |u: &str, from: &str| -> Result<String, String> {
        let o = u.trim_end_matches('/');
        let o = o.strip_suffix(base_path).unwrap_or(o);
        let (scheme, host) = o
            .split_once("://")
            .filter(|(s, h)| matches!(*s, "https" | "http") && !h.is_empty() && !h.contains('/'))
            .ok_or_else(|| {
                format!("{from} must be an origin such as https://scim.vendor.example (scheme and host, no path), not {u:?}")
            })?;
        Ok(format!("{scheme}://{host}"))
    };
    match (url, public_url) {
        (Some(u), _) => check(u, "--url"),
        (None, Some(p)) => check(p, "SCIM_PUBLIC_URL"),
        (None, None) if aws => Err(
            "link create --aws needs --url <origin>: the stack output TokenEndpoint (https://<api>.execute-api.<region>.amazonaws.com), or https://<DomainName>".into(),
        ),
        (None, None) => Ok(format!("http://{listen}")),
    }
}

fn tenant<'a>(words: &[&'a str], i: usize) -> Result<&'a str, String> {
    let t = *words.get(i).ok_or("missing <tenant>; see --help")?;
    if !valid_tenant(t) {
        return Err(format!(
            "'{t}' is not a tenant id a setup link can be made for (lower-case letters, digits, '-', up to 63 characters; reserved: {})",
            scim_core::auth::RESERVED_TENANT_IDS.join(", ")
        ));
    }
    Ok(t)
}

/// The options of `link create`: each at most once, with a value; anything else is refused.
fn options<'a>(words: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>, String> {
    const KNOWN: [&str; 4] = ["--minutes", "--days", "--return-url", "--url"];
    let mut out: Vec<(&str, &str)> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let name = words[i];
        if !KNOWN.contains(&name) {
            return Err(format!(
                "unexpected '{name}' (link create takes {})",
                KNOWN.join(", ")
            ));
        }
        let value = words
            .get(i + 1)
            .copied()
            .filter(|v| !v.starts_with("--"))
            .ok_or_else(|| format!("{name} needs a value"))?;
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("{name} is given twice"));
        }
        out.push((name, value));
        i += 2;
    }
    Ok(out)
}

fn number(opts: &[(&str, &str)], name: &str) -> Result<Option<u32>, String> {
    match opts.iter().find(|(n, _)| *n == name) {
        None => Ok(None),
        Some((_, v)) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} must be a whole number, not {v:?}")),
    }
}

/// Runs one `link …` command (`words` without `--aws`); `origin` gives the origin a new link names from
/// its `--url` (see [`origin`]). Returns what to print.
pub async fn command(
    m: &Manager,
    words: &[&str],
    origin: impl Fn(Option<&str>) -> Result<String, String>,
) -> Result<String, String> {
    let p = super::clients::cli_principal();
    let err = |e: ManageError| e.message;
    match words {
        ["link", "create", ..] => {
            let t = tenant(words, 2)?;
            let kind = *words
                .get(3)
                .ok_or("missing the link's kind: in_app or shareable")?;
            if !matches!(kind, "in_app" | "shareable") {
                return Err(format!(
                    "the kind is in_app (opens once, valid minutes) or shareable (valid days, revocable), not '{kind}'"
                ));
            }
            let opts = options(&words[4..])?;
            let url = opts.iter().find(|(n, _)| *n == "--url").map(|(_, v)| *v);
            let origin = origin(url)?;
            let ret = opts
                .iter()
                .find(|(n, _)| *n == "--return-url")
                .map(|(_, v)| *v);
            let link = m
                .create_link(
                    &p,
                    t,
                    kind,
                    number(&opts, "--days")?,
                    number(&opts, "--minutes")?,
                    ret,
                    &origin,
                )
                .await
                .map_err(err)?;
            Ok(format!(
                "link id: {}\nkind:    {}\nexpires: {}\nurl:     {}\n(the URL is shown once: only its hash is stored. Revoke: link revoke {t} {})\n",
                link.id, link.kind, link.expires, link.url, link.id
            ))
        }
        ["link", "list", ..] => {
            let t = tenant(words, 2)?;
            let mut out = String::new();
            for l in m.list_links(t).await.map_err(err)? {
                let state = match (&l.revoked, &l.used, l.expired) {
                    (Some(at), _, _) => format!("revoked {at}"),
                    (None, _, true) => "expired".to_string(),
                    (None, Some(at), false) if l.kind == "in_app" => format!("used {at}"),
                    _ => "live".to_string(),
                };
                out.push_str(&format!(
                    "{}\t{}\t{}\tcreated {}\texpires {}\t{}\n",
                    l.id,
                    l.kind,
                    state,
                    l.created,
                    l.expires,
                    l.return_url
                        .as_deref()
                        .map_or(String::new(), |u| format!("returns to {u}"))
                ));
            }
            Ok(out)
        }
        ["link", "revoke", ..] => {
            let t = tenant(words, 2)?;
            let id = *words.get(3).ok_or("missing <link-id>; see `link list`")?;
            m.revoke_link(&p, t, id).await.map_err(err)?;
            Ok(format!(
                "link {id} revoked: it opens nothing more, and the sessions it opened end at their next request\n"
            ))
        }
        _ => Err("unknown command; see --help".into()),
    }
}
