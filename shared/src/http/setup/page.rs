//! The setup page's HTML (maud): the tenant's values with copy buttons, the client secret (generate,
//! rotate, retire), Entra's steps (gallery and non-gallery), the WIF form, the connection check's steps,
//! the health figures. One style sheet and one script, both inline and allowed by their SHA-256 in the
//! CSP ([`csp`]); no other resource. Sizes in `rem` and a single column below 40 rem, so it reads at
//! 200 % zoom and on a phone; every field has a label; everything is a link, a button or a field, so
//! it works by keyboard.
//!
//! Imports: the crate's `manage` (the new secret), `metrics` (counts, the quarantine ratio), `oauth`
//! (WIF values).

use crate::manage::NewSecret;
use crate::metrics::{Counts, QUARANTINE_RATIO};
use crate::oauth::assertion::WifTrust;
use base64::Engine;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The failure ratio from which the page warns (half-way to Entra's quarantine threshold).
pub const WARN_RATIO: f64 = 0.20;

const STYLE: &str = r#"
:root { --fail: #d6453d; --warn: #c98a12; --ok: #1f7a3f; --ink: #1d232b; --muted: #5b6672; --line: #d5dbe1; --bg: #f6f8fa; --accent: #1f5fbf; }
* { box-sizing: border-box; }
body { margin: 0; overflow-wrap: anywhere; font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
header.top { background: #fff; border-bottom: 1px solid var(--line); }
header.top div { max-width: 60rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; margin: 0 0 .75rem; }
section { background: #fff; border: 1px solid var(--line); border-radius: .5rem; padding: 1rem; margin: 1rem 0; }
.muted { color: var(--muted); }
label { display: block; font-weight: 600; margin: .75rem 0 .25rem; }
.field { display: flex; gap: .5rem; flex-wrap: wrap; }
.field input { flex: 1 1 20rem; min-width: 0; }
input[type=text], input[type=url] { font: inherit; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .95rem; padding: .5rem; border: 1px solid #8a949e; border-radius: .3rem; width: 100%; background: #fff; color: var(--ink); }
input[readonly] { background: #f1f3f5; }
button { font: inherit; padding: .5rem .9rem; border-radius: .3rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button.secondary, button.copy { background: #fff; color: var(--accent); }
button.danger { background: #fff; color: var(--fail); border-color: var(--fail); }
button:focus-visible, input:focus-visible, a:focus-visible { outline: 3px solid #f0b429; outline-offset: 2px; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
.notice { padding: .75rem 1rem; border-radius: .4rem; margin: 1rem 0; border: 1px solid; }
.notice.ok { border-color: var(--ok); background: #eef8f1; }
.notice.fail { border-color: var(--fail); background: #fdf0ef; }
.secret { border: 2px solid var(--warn); background: #fff8e6; }
.ok { color: var(--ok); }
.warn { color: var(--warn); font-weight: 700; }
.fail { color: var(--fail); font-weight: 700; }
ol.steps li { margin: .4rem 0; }
ul.checks { list-style: none; padding: 0; }
ul.checks li { padding: .5rem 0; border-bottom: 1px solid var(--line); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: .75rem; }
.card { border: 1px solid var(--line); border-radius: .4rem; padding: .6rem; }
.card .v { font-size: 1.4rem; font-weight: 700; }
form.inline { display: inline; }
#secrets td { white-space: nowrap; overflow-wrap: normal; }
#secrets tr.in-use-note td { white-space: normal; padding-top: 0; }
#secrets tr:has(+ tr.in-use-note) td { border-bottom: none; }
p.in-use { margin: 0; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
@media (max-width: 40rem) { main { padding: .5rem; } section { padding: .75rem; } th, td { padding: .3rem; } table { display: block; overflow-x: auto; } .field input { flex-basis: 100%; } }
"#;

const SCRIPT: &str = r#"
for (const b of document.querySelectorAll("button.copy")) {
  b.addEventListener("click", () => {
    const i = document.getElementById(b.dataset.for);
    i.select();
    navigator.clipboard.writeText(i.value).then(() => { b.textContent = "Copied"; }, () => { b.textContent = "Press Ctrl+C"; });
  });
}
"#;

fn hash(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))
}

/// The Content-Security-Policy of every page: nothing but this page's own style sheet and script.
pub fn csp() -> String {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        format!(
            "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            hash(STYLE),
            hash(SCRIPT)
        )
    })
    .clone()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Fail,
}

/// One step of the connection check, in words.
pub struct Step {
    pub name: &'static str,
    pub level: Level,
    pub words: String,
}

impl Step {
    pub fn new(name: &'static str, level: Level, words: impl Into<String>) -> Self {
        Step {
            name,
            level,
            words: words.into(),
        }
    }
}

pub struct SecretRow {
    pub id: String,
    pub created: String,
    pub expires: String,
    pub expired: bool,
    /// When Entra last got a token with it (RFC 3339, to within ten minutes), if ever.
    pub last_used: Option<String>,
    /// An older secret Entra still used recently: retiring it now would break provisioning.
    pub in_use_warning: bool,
}

/// Flags each secret that is older than the client's newest live secret and was used within `window`
/// seconds of `now`: Entra is most likely still configured with it, so retiring it would break
/// provisioning until Entra is given the new one. Nothing is flagged when the client has one live secret
/// (retiring it is refused advice of its own), nor when the secrets' creation times cannot tell which is
/// newer.
pub fn flag_old_secrets_in_use(secrets: &mut [SecretRow], now: i64, window: i64) {
    // RFC 3339 texts do not sort as times (".5Z" and "Z" for the same second): compared as times.
    let at = |t: &str| OffsetDateTime::parse(t, &Rfc3339).ok();
    let live = |s: &SecretRow| !s.expired;
    let Some(newest) = secrets
        .iter()
        .filter(|s| live(s))
        .filter_map(|s| at(&s.created))
        .max()
    else {
        return;
    };
    for s in secrets.iter_mut() {
        let used = s
            .last_used
            .as_deref()
            .and_then(at)
            .map(|t| t.unix_timestamp());
        s.in_use_warning = live(s)
            && at(&s.created).is_some_and(|c| c < newest)
            && used.is_some_and(|u| u > now - window && u <= now + 60);
    }
}

pub struct ClientRow {
    pub id: String,
    pub secrets: Vec<SecretRow>,
}

/// Where the health section's request figures stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figures {
    /// Shown: the process's own metrics, or (`elsewhere`) read from the provider's monitoring.
    Shown { elsewhere: bool },
    /// Not kept where this page can read them (metrics off, or a Lambda function with no reader).
    NotHere,
    /// Kept elsewhere, but could not be read just now.
    Unreadable,
}

pub struct Health {
    pub figures: Figures,
    pub last_request: Option<String>,
    pub users: Option<usize>,
    pub groups: Option<usize>,
    pub last_hour: Counts,
    /// Status, scimType, count: the failures of the last hour, by kind.
    pub kinds: Vec<(u16, Option<String>, u64)>,
}

pub struct View {
    pub tenant: String,
    pub display_name: String,
    pub state: &'static str,
    pub csrf: String,
    pub return_url: Option<String>,
    pub session_expires: String,
    pub tenant_url: String,
    pub token_endpoint: Option<String>,
    pub clients: Vec<ClientRow>,
    pub wif: Option<WifTrust>,
    pub wif_input: Option<WifTrust>,
    pub new_secret: Option<NewSecret>,
    pub notice: Option<(bool, String)>,
    pub checks: Option<Vec<Step>>,
    pub health: Health,
}

fn shell(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                (body)
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

/// A page that says why a link or a form was refused.
pub fn refusal(title: &str, advice: &str) -> Markup {
    shell(
        title,
        html! {
            main {
                section.refused role="alert" {
                    h1 { (title) }
                    p { (advice) }
                }
            }
        },
    )
}

fn copy_field(id: &str, label: &str, value: &str) -> Markup {
    html! {
        label for=(id) { (label) }
        div.field {
            input type="text" id=(id) name=(id) value=(value) readonly;
            button.copy type="button" data-for=(id) aria-label={ "Copy " (label) } { "Copy" }
        }
    }
}

fn csrf(v: &View) -> Markup {
    html! { input type="hidden" name="csrf" value=(v.csrf); }
}

/// What a failure kind means, in words (never a value the client sent).
pub fn reason(status: u16, scim_type: Option<&str>) -> &'static str {
    match (status, scim_type) {
        (409, _) => "A user or group with that name already exists here.",
        (400, Some("invalidFilter")) => "Entra sent a filter this server does not understand.",
        (400, Some("invalidValue")) | (400, Some("invalidSyntax")) => {
            "Entra sent a value this server does not accept (check the attribute mappings)."
        }
        (400, Some("mutability")) => "Entra tried to change an attribute that cannot change.",
        (400, _) => "Entra sent a request this server does not accept.",
        (401, _) | (403, _) => "The credential Entra sent was refused (check the secret in Entra).",
        (404, _) => "Entra asked for a user or group that does not exist here.",
        (412, _) => "The user or group was changed by another request at the same moment.",
        (413, _) => "Entra sent a request larger than this server accepts.",
        (429, _) => "Too many requests at once; Entra retries them.",
        (s, _) if s >= 500 => "The server failed; Entra retries these.",
        _ => "The request was refused.",
    }
}

fn ratio_class(r: f64) -> &'static str {
    if r >= QUARANTINE_RATIO {
        "fail"
    } else if r >= WARN_RATIO {
        "warn"
    } else {
        "ok"
    }
}

pub fn setup(v: &View) -> Markup {
    let first_client = v.clients.first();
    let live_secrets = first_client
        .map(|c| c.secrets.iter().filter(|s| !s.expired).count())
        .unwrap_or(0);
    shell(
        &format!("Connect Microsoft Entra ID — {}", v.display_name),
        html! {
            header.top {
                div {
                    h1 { "Connect Microsoft Entra ID" }
                    p.muted {
                        "Directory " strong { (v.display_name) } " (" code { (v.tenant) } "). "
                        "This page works until " (v.session_expires) "."
                        @if let Some(u) = &v.return_url { " " a href=(u) rel="noreferrer" { "Back to the application" } }
                    }
                }
            }
            main {
                @if v.state != "active" {
                    div.notice.fail role="alert" { "This directory is " (v.state) ": Entra's requests are refused until your provider resumes it." }
                }
                @if let Some((ok, text)) = &v.notice {
                    div class={ "notice " (if *ok { "ok" } else { "fail" }) } role="status" id="notice" { (text) }
                }
                @if let Some(s) = &v.new_secret {
                    section.secret id="new-secret-box" aria-labelledby="new-secret-title" {
                        h2 id="new-secret-title" { "Your new client secret" }
                        p { strong { "Copy it now: it is shown only this once." } " Reloading the page will not show it again. It is valid until " (s.expires) "." }
                        (copy_field("new-secret", "Client secret", &s.secret))
                        (copy_field("new-secret-client", "Client ID", &s.client_id))
                    }
                }
                section aria-labelledby="values-title" {
                    h2 id="values-title" { "1. Your connection values" }
                    p.muted { "Paste these into Entra's Provisioning page (the steps are below)." }
                    (copy_field("tenant-url", "Tenant URL", &v.tenant_url))
                    @if let Some(t) = &v.token_endpoint {
                        (copy_field("token-endpoint", "Token Endpoint", t))
                    }
                    @if let Some(c) = first_client {
                        (copy_field("client-id", "Client ID", &c.id))
                    } @else {
                        p { "There is no Client ID yet: generate a client secret below and it appears here." }
                    }
                }
                section aria-labelledby="secret-title" {
                    h2 id="secret-title" { "2. Client secret" }
                    @if let Some(c) = first_client {
                        table id="secrets" {
                            thead { tr { th scope="col" { "Secret" } th scope="col" { "Created" } th scope="col" { "Expires" } th scope="col" { "Last used by Entra" } th scope="col" { "Action" } } }
                            tbody {
                                @for s in &c.secrets {
                                    tr data-secret=(s.id) {
                                        td { code { (s.id) } }
                                        td { (s.created) }
                                        td { (s.expires) @if s.expired { " " span.fail { "(expired)" } } }
                                        td { (s.last_used.as_deref().unwrap_or("never")) }
                                        td {
                                            form.inline method="post" action="/setup/retire" {
                                                (csrf(v))
                                                input type="hidden" name="client" value=(c.id);
                                                input type="hidden" name="secret" value=(s.id);
                                                @if s.in_use_warning {
                                                    button.danger type="submit" aria-label={ "Retire secret " (s.id) } aria-describedby={ "in-use-" (s.id) } { "Retire" }
                                                } @else {
                                                    button.danger type="submit" aria-label={ "Retire secret " (s.id) } { "Retire" }
                                                }
                                            }
                                        }
                                    }
                                    @if s.in_use_warning {
                                        tr.in-use-note data-for-secret=(s.id) {
                                            td colspan="5" {
                                                p.warn.in-use id={ "in-use-" (s.id) } role="note" {
                                                    "Entra still used secret " code { (s.id) } " at " (s.last_used.as_deref().unwrap_or("")) ". "
                                                    "Retiring it now will break provisioning until Entra is updated with the new secret."
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        @if live_secrets == 1 {
                            p.muted { "To rotate: add a second secret, paste it into Entra and save, run Test Connection there, then retire the old one here. Entra stops connecting if you retire the secret it still uses." }
                        }
                        @if live_secrets == 0 {
                            p.fail { "No secret is valid: Entra cannot get a token. Generate one." }
                        }
                    } @else {
                        p { "No client secret yet." }
                    }
                    form method="post" action="/setup/secret" {
                        (csrf(v))
                        button id="generate" type="submit" {
                            @if first_client.is_some() { "Add a second secret (rotation)" } @else { "Generate a client secret" }
                        }
                    }
                }
                section aria-labelledby="entra-title" {
                    h2 id="entra-title" { "3. In Microsoft Entra ID" }
                    h3 { "If the application is in Entra's gallery" }
                    ol.steps {
                        li { "In the Entra admin center, open " strong { "Enterprise applications" } ", then " strong { "New application" } ", search for the application and create it." }
                        li { "Open " strong { "Provisioning" } ", select " strong { "Connect your application" } " (or set Provisioning Mode to " strong { "Automatic" } ")." }
                        li { "Choose the authentication method " strong { "OAuth2 client credentials grant" } ", and paste the " strong { "Tenant URL" } ", " strong { "Token Endpoint" } ", " strong { "Client ID" } " and " strong { "Client secret" } " from this page." }
                        li { "Select " strong { "Test Connection" } ", then " strong { "Save" } ". Assign users and groups, and start provisioning." }
                    }
                    h3 { "If it is not in the gallery" }
                    ol.steps {
                        li { "Open " strong { "Enterprise applications" } ", " strong { "New application" } ", " strong { "Create your own application" } ", and choose " strong { "Integrate any other application you don't find in the gallery (Non-gallery)" } "." }
                        li { "Open " strong { "Provisioning" } " and set Provisioning Mode to " strong { "Automatic" } "." }
                        li { "Under Admin Credentials, paste the same four values, then " strong { "Test Connection" } " and " strong { "Save" } "." }
                        li { "Check the attribute mappings (userName is matched on " code { "userName" } "), assign users and groups, and start provisioning." }
                    }
                }
                section aria-labelledby="wif-title" {
                    h2 id="wif-title" { "4. Workload identity federation (instead of a secret)" }
                    p.muted { "If Entra shows an Issuer, Subject, Audience and JWKS URL for this application, enter them here: Entra then signs in without a secret. Values are compared exactly as typed." }
                    @if let Some(w) = &v.wif {
                        p id="wif-current" { "Set up: issuer " code { (w.issuer) } ", subject " code { (w.subject) } "." }
                    }
                    @let shown = v.wif_input.as_ref().or(v.wif.as_ref());
                    form method="post" action="/setup/wif" id="wif-form" {
                        (csrf(v))
                        label for="issuer" { "Issuer" }
                        input type="url" id="issuer" name="issuer" required value=(shown.map(|w| w.issuer.as_str()).unwrap_or(""));
                        label for="subject" { "Subject" }
                        input type="text" id="subject" name="subject" required value=(shown.map(|w| w.subject.as_str()).unwrap_or(""));
                        label for="audience" { "Audience" }
                        input type="text" id="audience" name="audience" required value=(shown.map(|w| w.audience.as_str()).unwrap_or(""));
                        label for="jwks_url" { "JWKS URL" }
                        input type="url" id="jwks_url" name="jwks_url" required value=(shown.map(|w| w.jwks_url.as_str()).unwrap_or(""));
                        p { button id="save-wif" type="submit" { "Save and check the JWKS URL" } }
                    }
                }
                section aria-labelledby="check-title" {
                    h2 id="check-title" { "5. Check the connection" }
                    p.muted { "Runs what Entra's Test Connection needs: the directory is active, a token can be issued, and the user query Entra sends answers. This server keeps only a hash of each secret, so it checks the secret's client and expiry, not the secret itself; Entra's own Test Connection sends it." }
                    form method="post" action="/setup/check" {
                        (csrf(v))
                        button id="check" type="submit" { "Check connection" }
                    }
                    @if let Some(steps) = &v.checks {
                        ul.checks id="checks" {
                            @for s in steps {
                                li data-level=(if s.level == Level::Ok { "ok" } else { "fail" }) {
                                    strong { (s.name) ": " }
                                    @if s.level == Level::Ok { span.ok { "passed. " } } @else { span.fail { "failed. " } }
                                    (s.words)
                                }
                            }
                        }
                    }
                }
                (health(&v.health))
            }
        },
    )
}

fn health(h: &Health) -> Markup {
    let c = &h.last_hour;
    let shown = matches!(h.figures, Figures::Shown { .. });
    let ratio = c.failure_ratio().filter(|_| shown);
    html! {
        section aria-labelledby="health-title" id="health" {
            h2 id="health-title" { "6. Health" }
            @match h.figures {
                Figures::NotHere => p.muted id="figures-note" { "This server does not record request figures here; your provider sees them in its monitoring." },
                Figures::Unreadable => p.warn id="figures-note" role="status" { "The request figures could not be read from your provider's monitoring just now; reload the page to try again." },
                Figures::Shown { elsewhere: true } => p.muted id="figures-note" { "Request figures come from your provider's monitoring; the last minute or two may not be counted yet." },
                Figures::Shown { elsewhere: false } => {},
            }
            div.cards {
                @if shown {
                    div.card id="last-request" { div.muted { "Last provisioning request" } div.v { (h.last_request.clone().unwrap_or_else(|| "none in the last hour".into())) } }
                } @else {
                    div.card id="last-request" { div.muted { "Last provisioning request" } div.v { "–" } }
                }
                div.card id="users" { div.muted { "Users provisioned" } div.v { (h.users.map(|n| n.to_string()).unwrap_or_else(|| "–".into())) } }
                div.card id="groups" { div.muted { "Groups provisioned" } div.v { (h.groups.map(|n| n.to_string()).unwrap_or_else(|| "–".into())) } }
                @if shown {
                    div.card id="requests" { div.muted { "Requests, last hour" } div.v { (c.requests) } }
                    div.card id="failures" { div.muted { "Failed, last hour" } div class={ "v " (if c.failures > 0 { "fail" } else { "" }) } { (c.failures) } }
                } @else {
                    div.card id="requests" { div.muted { "Requests, last hour" } div.v { "–" } }
                    div.card id="failures" { div.muted { "Failed, last hour" } div.v { "–" } }
                }
                div.card { div.muted { "Failure ratio, last hour" }
                    @match ratio {
                        Some(r) => div class={ "v " (ratio_class(r)) } id="ratio" { (format!("{:.1} %", r * 100.0)) },
                        None => div.v id="ratio" { "–" },
                    }
                }
            }
            @if let Some(r) = ratio {
                @if r >= QUARANTINE_RATIO {
                    p.fail id="ratio-warning" role="alert" { "More than 40 % of Entra's requests failed in the last hour: Entra puts provisioning into quarantine at this rate. Look at the failures below." }
                } @else if r >= WARN_RATIO {
                    p.warn id="ratio-warning" role="alert" { "Many of Entra's requests fail: at 40 % Entra puts provisioning into quarantine. Look at the failures below." }
                }
            }
            @if !h.kinds.is_empty() {
                h3 { "Failures by kind" }
                table id="kinds" {
                    thead { tr { th scope="col" { "Status" } th scope="col" { "What it means" } th scope="col" { "Count" } } }
                    tbody {
                        @for (status, kind, n) in &h.kinds {
                            tr { td { (status) @if let Some(k) = kind { " " (k) } } td { (reason(*status, kind.as_deref())) } td { (n) } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, created: &str, used: Option<&str>, expired: bool) -> SecretRow {
        SecretRow {
            id: id.into(),
            created: created.into(),
            expires: "2028-01-01T00:00:00Z".into(),
            expired,
            last_used: used.map(str::to_string),
            in_use_warning: false,
        }
    }

    #[test]
    fn only_an_older_secret_used_recently_is_flagged() {
        // 2026-12-07T06:00:00Z
        let now = 1_796_623_200;
        let flags = |mut rows: Vec<SecretRow>| {
            flag_old_secrets_in_use(&mut rows, now, 24 * 3600);
            rows.iter().map(|r| r.in_use_warning).collect::<Vec<_>>()
        };
        let (old, new) = ("2026-12-01T00:00:00Z", "2026-12-07T05:00:00Z");
        // The older one used an hour ago: flagged; the newer one, even used, never.
        assert_eq!(
            flags(vec![
                row("a", old, Some("2026-12-07T05:00:00Z"), false),
                row("b", new, Some("2026-12-07T05:50:00Z"), false)
            ]),
            [true, false]
        );
        // In either order.
        assert_eq!(
            flags(vec![
                row("b", new, None, false),
                row("a", old, Some("2026-12-07T05:00:00Z"), false)
            ]),
            [false, true]
        );
        // Used more than 24 h ago, never used, or expired: not flagged.
        assert_eq!(
            flags(vec![
                row("a", old, Some("2026-12-06T05:59:00Z"), false),
                row("b", new, None, false)
            ]),
            [false, false]
        );
        assert_eq!(
            flags(vec![row("a", old, None, false), row("b", new, None, false)]),
            [false, false]
        );
        assert_eq!(
            flags(vec![
                row("a", old, Some("2026-12-07T05:00:00Z"), true),
                row("b", new, None, false)
            ]),
            [false, false]
        );
        // Times compared as times, not as text ("…:44Z" is before "…:44.265Z").
        assert_eq!(
            flags(vec![
                row("b", "2026-12-07T05:00:44.265Z", None, false),
                row(
                    "a",
                    "2026-12-07T05:00:44Z",
                    Some("2026-12-07T05:00:00Z"),
                    false
                )
            ]),
            [false, true]
        );
        // One secret: nothing to compare with.
        assert_eq!(
            flags(vec![row("a", old, Some("2026-12-07T05:00:00Z"), false)]),
            [false]
        );
    }
}
