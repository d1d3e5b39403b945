//! `scim-admin`: tenants, their lifecycle, their credentials and setup links, through the management operations
//! (`scim_core::manage`, the same code as the management API; every change is in the tenant's audit trail,
//! as `scim-admin:<login>`). A new token or secret is printed exactly once; the store keeps only its hash.
//!
//! Store selection: `--aws` uses the AWS credential chain and `SCIM_TABLE`; `SCIM_DYNAMODB_ENDPOINT` any
//! DynamoDB API; otherwise the local server's embedded database in `SCIM_DATA_DIR` (through the running
//! server's engine when it is up, signed with the key the server keeps in the data directory, else opened
//! directly).

use scim_core::auth::valid_tenant;
use scim_core::config::StoreConfig;
use scim_core::local_engine::{self, RunningEngine};
use scim_core::manage::{ManageSettings, Manager};
use scim_core::store::dynamo::DynamoStore;
use scim_core::store::StoreError;
use std::sync::Arc;

const HELP: &str = "scim-admin: manage tenants and bearer tokens

USAGE:
  scim-admin [--aws] tenant create <tenant> [--name <display name>]
  scim-admin [--aws] tenant list
  scim-admin [--aws] tenant show <tenant>
  scim-admin [--aws] tenant pause|resume <tenant>   (paused: its SCIM and token requests get 503 + Retry-After)
  scim-admin [--aws] tenant delete <tenant>   (offboarding: refused from now on, then everything it owns removed)
  scim-admin [--aws] tenant audit <tenant>   (who did what, when: every change made here or by the management API)
  scim-admin [--aws] token issue <tenant> [--label <text>] [--user <user id>]   (--user: the token acts as that user at /Me)
  scim-admin [--aws] token list <tenant>
  scim-admin [--aws] token revoke <tenant> <token-id>
  scim-admin [--aws [--namespace <ns>]] status <tenant>   (also: default, all, unattributed)
{CLIENTS}{LINKS}
client/wif: OAuth 2.0 clients (client id and secrets; a new secret is printed once, only its hash is
stored) and the Workload Identity Federation trust of a tenant; <tenant> may be `default` (the base URL's
directory, token endpoint <server>/oauth2/token). See docs/oauth.md.

status: the tenant's requests, failures by kind, latency and last failed requests — from the running
scim-local's operator API (SCIM_DATA_DIR/admin-endpoint, admin token from SCIM_DATA_DIR/admin-token or
SCIM_ADMIN_TOKEN), or with --aws from CloudWatch (namespace: --namespace, SCIM_METRICS_NAMESPACE, or the
stack output MetricsNamespace).

{LINKS_ABOUT}

A tenant's SCIM base URL is <server>/<tenant>/scim/v2; its tokens work only there.
Tenant ids: lower-case letters, digits and '-', up to 63 characters; not default, scim, admin, oauth2,
events, metrics, health, manage or setup (reserved).

STORE: --aws (AWS chain, SCIM_TABLE), or SCIM_DYNAMODB_ENDPOINT, or else the local server's
embedded database in SCIM_DATA_DIR (default ./.scim-data).
";

#[tokio::main]
async fn main() {
    match run().await {
        Ok(()) => {}
        Err(e) => {
            eprintln!("scim-admin: {e}");
            std::process::exit(1);
        }
    }
}

async fn store(aws: bool) -> Result<DynamoStore, String> {
    let cfg = StoreConfig::from_env();
    if aws {
        return Ok(DynamoStore::from_env(&cfg).await);
    }
    if let Some(ep) = &cfg.endpoint {
        return Ok(DynamoStore::local(ep, cfg.table.clone(), cfg.call_timeout)
            .with_events_table(cfg.events_table.clone()));
    }
    let dir = local_engine::data_dir();
    // A running server: through its engine's listener, signing with the key it keeps in the data directory.
    if let Ok(engine) = RunningEngine::find(&dir) {
        let s = engine
            .store(cfg.table.clone(), cfg.call_timeout)
            .with_events_table(cfg.events_table.clone());
        match s.warm_up().await {
            Ok(()) => return Ok(s),
            // Nobody listens there any more: the server is stopped, open the database directly.
            Err(StoreError::Unavailable(_)) => {}
            Err(e) => {
                return Err(format!(
                    "the running server's engine at {} refused the call: {e:?}",
                    engine.endpoint()
                ))
            }
        }
    }
    scim_local::engine::private_dir::prepare(&dir)?;
    let embedded =
        scim_local::engine::start_embedded_dynamodb(Some(&dir.join("dynamodb.sqlite"))).await?;
    let s = embedded
        .store(cfg.table.clone(), cfg.call_timeout)
        .with_events_table(cfg.events_table.clone());
    s.create_table_if_missing()
        .await
        .map_err(|e| format!("create table: {e:?}"))?;
    Ok(s)
}

/// The management operations on the selected store: every command that changes a tenant or a credential
/// runs them (the same code as the management API), so each leaves its audit entry.
async fn manager(aws: bool) -> Result<Manager, String> {
    let settings = ManageSettings::from_env()?;
    Ok(Manager::new(Arc::new(store(aws).await?), settings))
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

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

static NAMESPACE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The running scim-local's figures for `tenant`, through its operator API.
async fn local_status(tenant: &str) -> Result<String, String> {
    let dir = local_engine::data_dir();
    let endpoint = std::fs::read_to_string(dir.join("admin-endpoint")).map_err(|e| {
        format!(
            "cannot read {} ({e}): is scim-local running with SCIM_DATA_DIR={}?",
            dir.join("admin-endpoint").display(),
            dir.display()
        )
    })?;
    let token = match std::env::var("SCIM_ADMIN_TOKEN") {
        Ok(t) => t,
        Err(_) => std::fs::read_to_string(dir.join("admin-token")).map_err(|e| {
            format!(
                "cannot read the admin token {}: {e}",
                dir.join("admin-token").display()
            )
        })?,
    };
    let endpoint = endpoint.trim();
    let summary = scim_local::admin::client::tenant_summary(endpoint, token.trim(), tenant).await?;
    Ok(scim_local::cli::text::summary(
        &summary,
        &format!("scim-local at {endpoint}"),
    ))
}

/// The tenant's figures of the last hour from CloudWatch.
async fn aws_status(tenant: &str, _args: &[String]) -> Result<String, String> {
    let namespace = NAMESPACE
        .get()
        .cloned()
        .unwrap_or_else(scim_core::metrics::cloudwatch::namespace_from_env);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let summary = scim_core::metrics::cloudwatch::tenant_summary(
        &cw,
        &namespace,
        tenant,
        std::time::SystemTime::now(),
    )
    .await?;
    let mut text =
        scim_local::cli::text::summary(&summary, &format!("CloudWatch, namespace {namespace}"));
    text.push_str("last failed requests: CloudWatch Logs Insights, saved query scim-<Stage>/last-failed-requests-of-a-tenant\n");
    Ok(text)
}

fn tenant_arg(args: &[String], i: usize) -> Result<&str, String> {
    let t = args.get(i).ok_or("missing <tenant>; see --help")?;
    if !valid_tenant(t) {
        return Err(format!(
            "'{t}' is not a valid tenant id (lower-case letters, digits, '-', up to 63 characters; reserved: {})",
            scim_core::auth::RESERVED_TENANT_IDS.join(", ")
        ));
    }
    Ok(t)
}

async fn run() -> Result<(), String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "--help" || a == "-h") {
        print!(
            "{}",
            HELP.replace("{CLIENTS}", scim_local::cli::clients::HELP)
                .replace("{LINKS}\n", scim_local::cli::links::HELP)
                .replace("{LINKS_ABOUT}\n", scim_local::cli::links::ABOUT)
        );
        return Ok(());
    }
    let aws = args.iter().any(|a| a == "--aws");
    args.retain(|a| a != "--aws");
    if let Some(i) = args.iter().position(|a| a == "--namespace") {
        let ns = args.get(i + 1).ok_or("--namespace needs a value")?.clone();
        args.drain(i..=i + 1);
        NAMESPACE.set(ns).ok();
    }
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let p = scim_local::cli::clients::cli_principal();
    let err = |e: scim_core::manage::ManageError| e.message;
    match words.as_slice() {
        ["tenant", "create", ..] => {
            let t = tenant_arg(&args, 2)?;
            let name = option(&words, "--name")?;
            match manager(aws).await?.create_tenant(&p, t, name, None).await {
                Ok(_) => println!("tenant {t} created"),
                Err(e) if e.code == "tenant_exists" => println!("tenant {t} already exists"),
                Err(e) => return Err(e.message),
            }
        }
        ["tenant", "list"] => {
            let m = manager(aws).await?;
            let mut after: Option<String> = None;
            loop {
                let page = m.list_tenants(after.as_deref(), 200).await.map_err(err)?;
                for t in &page.tenants {
                    println!("{}\t{}\t{}", t.id, t.state.as_str(), t.display_name);
                }
                match page.next_after {
                    Some(a) => after = Some(a),
                    None => break,
                }
            }
        }
        ["tenant", "show", ..] => {
            let t = tenant_arg(&args, 2)?;
            let r = manager(aws).await?.tenant(t).await.map_err(err)?;
            print_json(
                &serde_json::to_value(scim_core::manage::TenantView::from(&r)).unwrap_or_default(),
            );
        }
        ["tenant", verb @ ("pause" | "resume" | "delete"), ..] => {
            let t = tenant_arg(&args, 2)?;
            let m = manager(aws).await?;
            let r = match *verb {
                "pause" => m.pause(&p, t).await,
                "resume" => m.resume(&p, t).await,
                _ => m.delete_tenant(&p, t).await,
            }
            .map_err(err)?;
            println!("tenant {t}: {}", r.state.as_str());
        }
        ["tenant", "audit", ..] => {
            let t = tenant_arg(&args, 2)?;
            let page = manager(aws).await?.audit(t, None, 200).await.map_err(err)?;
            for e in page["entries"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\t{}\t{}",
                    e["at"].as_str().unwrap_or(""),
                    e["actor"].as_str().unwrap_or(""),
                    e["action"].as_str().unwrap_or(""),
                    e["target"].as_str().unwrap_or("")
                );
            }
        }
        ["token", "issue", ..] => {
            let t = tenant_arg(&args, 2)?;
            let label = option(&words, "--label")?.unwrap_or("");
            let user = option(&words, "--user")?;
            let tok = manager(aws)
                .await?
                .issue_token(&p, t, label, user)
                .await
                .map_err(err)?;
            println!("token id: {}", tok.id);
            println!("token:    {}", tok.token);
            println!("(shown once: only its hash is stored. Base URL: <server>/{t}/scim/v2)");
        }
        ["token", "list", ..] => {
            let t = tenant_arg(&args, 2)?;
            let creds = manager(aws).await?.credentials(t).await.map_err(err)?;
            for r in creds["tokens"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\t{}\t{}",
                    r["id"].as_str().unwrap_or(""),
                    r["created"].as_str().unwrap_or(""),
                    r["lastUsed"]
                        .as_str()
                        .map_or("never used".to_string(), |u| format!("last used {u}")),
                    r["label"].as_str().unwrap_or("")
                );
            }
        }
        ["token", "revoke", ..] => {
            let t = tenant_arg(&args, 2)?;
            let id = args.get(3).ok_or("missing <token-id>; see `token list`")?;
            manager(aws)
                .await?
                .revoke_token(&p, t, id)
                .await
                .map_err(err)?;
            println!(
                "token {id} revoked (servers stop accepting it within {} s)",
                scim_core::auth::TOKEN_CACHE_TTL.as_secs()
            );
        }
        ["status", ..] => {
            let name = args.get(1).ok_or("missing <tenant>; see --help")?;
            let tenant = match name.as_str() {
                "all" => scim_core::metrics::ALL.to_string(),
                "unattributed" => scim_core::metrics::UNATTRIBUTED.to_string(),
                "default" => "default".to_string(),
                _ => tenant_arg(&args, 1)?.to_string(),
            };
            let text = if aws {
                aws_status(&tenant, &args).await?
            } else {
                local_status(&tenant).await?
            };
            print!("{text}");
        }
        ["link", ..] => {
            let http = scim_core::config::HttpConfig::from_env();
            let listen = std::env::var("SCIM_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
            let origin = |url: Option<&str>| {
                scim_local::cli::links::origin(
                    url,
                    http.public_url.as_deref(),
                    &http.base_path,
                    &listen,
                    aws,
                )
            };
            print!(
                "{}",
                scim_local::cli::links::command(&manager(aws).await?, &words, origin).await?
            )
        }
        ["client", ..] | ["wif", ..] => print!(
            "{}",
            scim_local::cli::clients::command(&manager(aws).await?, &words).await?
        ),
        _ => return Err("unknown command; see --help".into()),
    }
    Ok(())
}
