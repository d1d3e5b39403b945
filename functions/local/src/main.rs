//! `scim-local`: the whole SCIM API under one base URL, for development, demos and Entra-style test tools.
//!
//! With no configuration it starts an embedded DynamoDB engine (dynoxide) on a SQLite file in the data
//! directory, creates the table, makes a bearer token at first start and keeps it with the data, and
//! prints the Tenant URL and the token. `SCIM_DYNAMODB_ENDPOINT` points it at another DynamoDB API
//! (moto, DynamoDB Local) instead. `--create-table` creates the table on the configured endpoint and exits.

use scim_core::auth::{self, Auth};
use scim_core::config::{HttpConfig, Limits, StoreConfig};
use scim_core::http::AppState;
use scim_core::local_engine;
use scim_core::service::Service;
use scim_core::store::dynamo::DynamoStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const HELP: &str = "scim-local: a local SCIM 2.0 server on an embedded DynamoDB engine

USAGE: scim-local [--create-table] [--help]

ENVIRONMENT (all optional)
  SCIM_LISTEN              address to listen on (default 127.0.0.1:8080)
  SCIM_BASE_PATH           path prefix of the SCIM API (default /scim/v2)
  SCIM_DATA_DIR            where the embedded database, the token and the engine's key live, private to
                           its owner (default ./.scim-data)
  SCIM_BEARER_TOKEN        the bearer token (default: generated at first start, kept in SCIM_DATA_DIR/token)
  SCIM_OAUTH_SIGNING_KEYS  OAuth access tokens' signing keys (default: generated at first start, kept in
                           SCIM_DATA_DIR/oauth-keys); see docs/oauth.md for the other SCIM_OAUTH_* settings
  SCIM_ADMIN_TOKEN         the operator page's token (/admin; default: generated at first start, kept in
                           SCIM_DATA_DIR/admin-token; never the SCIM token)
  SCIM_METRICS             off: record no metrics (only to measure their cost; default on)
  SCIM_DYNAMODB_ENDPOINT   use this DynamoDB API instead of the embedded engine (e.g. http://127.0.0.1:5000)
  SCIM_TABLE               table name (default scim)
  SCIM_EVENTS_TABLE        the change events' table (default <SCIM_TABLE>-events; no stream)
  SCIM_EMBEDDED_TRANSPORT  in-process (default) or http: how the server reaches its embedded engine
  SCIM_ENGINE_SYNC         normal (default) or full: the embedded engine's file flushed at each checkpoint of
                           its write-ahead log, or at each commit (survives a power loss; slower writes)
  TOKIO_WORKER_THREADS     runtime worker threads (default: twice the cores)
  SCIM_PROFILE             app profile: default, jostle, joynfsm, junojourney, askspoke, or a JSON file
  RUST_LOG                 log filter (default info)
  SCIM_HEADER_READ_TIMEOUT_SECS  a request head must arrive within this (default 15; also the keep-alive wait)
  SCIM_BODY_READ_TIMEOUT_SECS    a request body must arrive within this (default 30; 408 after)
  SCIM_IDLE_TIMEOUT_SECS         close a connection with no bytes moving this long (default 60)
  SCIM_MAX_CONNECTIONS           open connections at most (default 256; more are answered 503)
  SCIM_MAX_CONNECTIONS_PER_PEER  open connections from one address at most (default half of
                                 SCIM_MAX_CONNECTIONS; more are answered 503)
  SCIM_EVENTS                    off: no change events (default on; docs/events.md)
  SCIM_EVENTS_RETENTION_DAYS     how long the Events API keeps an event (default 7)
  SCIM_EVENTS_WEBHOOK_URL        POST every change event to this http:// URL, signed (docs/events.md)
  SCIM_EVENTS_WEBHOOK_SECRET     the webhook's signing secret (default: generated, kept in
                                 SCIM_DATA_DIR/webhook-secret)

  --create-table           create the table (with its indexes) on SCIM_DYNAMODB_ENDPOINT, or on AWS when
                           unset, then exit
";

// mimalloc instead of glibc malloc: allocation and free were about 12 % of the server's CPU under read load
// (many short-lived JSON values and SDK request structures per request); see docs/benchmark.md ("Profile").
// The Lambda functions keep the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(run()),
        Err(e) => Err(format!("cannot start the async runtime: {e}")),
    };
    if let Err(e) = result {
        eprintln!("scim-local: {e}");
        std::process::exit(1);
    }
}

/// Twice the cores (`TOKIO_WORKER_THREADS` overrides). The embedded engine runs each DynamoDB call to the
/// end on the worker that makes it, behind one lock, so a worker waiting for the engine cannot serve HTTP;
/// with 2 cores, 4 workers gave about +8 % on GET by id and on `userName eq` over 2 (three alternating
/// pairs; docs/benchmark.md).
fn worker_threads() -> usize {
    if let Some(n) = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{HELP}");
        return Ok(());
    }
    if let Some(bad) = args.iter().find(|a| *a != "--create-table") {
        return Err(format!("unknown argument {bad}; see --help"));
    }
    // Held to the end of `run`: dropping it writes out the lines still buffered.
    let _log_writer = init_logging();
    let store_cfg = StoreConfig::from_env();
    if args.iter().any(|a| a == "--create-table") {
        let store = DynamoStore::from_env(&store_cfg).await;
        store
            .create_table_if_missing()
            .await
            .map_err(|e| format!("create table {}: {e:?}", store_cfg.table))?;
        store
            .move_events()
            .await
            .map_err(|e| format!("move the change events: {e:?}"))?;
        println!("table {} is ready", store_cfg.table);
        return Ok(());
    }

    let data_dir = local_engine::data_dir();
    // Private to its owner (0700, files 0600), tightened if it was looser: it holds every tenant's data,
    // the token and the engine's key.
    scim_local::engine::private_dir::prepare(&data_dir)?;
    // The change events' consumer reaches the embedded engine in process whatever the server's transport.
    let mut events_store = None;
    let (store, endpoint, engine) = match &store_cfg.endpoint {
        Some(ep) => (
            DynamoStore::local(ep, store_cfg.table.clone(), store_cfg.call_timeout)
                .with_events_table(store_cfg.events_table.clone()),
            ep.clone(),
            format!("DynamoDB API at {ep}"),
        ),
        None => {
            let file = data_dir.join("dynamodb.sqlite");
            // The engine's listener lets in only requests signed with this key (kept in the data directory,
            // 0600), so only the directory's owner can reach the engine from another process.
            let key = scim_local::engine::engine_door::EngineKey::load_or_create(&data_dir)?;
            let embedded =
                scim_local::engine::start_embedded_dynamodb_with_key(Some(&file), key).await?;
            // Lets `scim-admin`, the handlers under `cargo lambda watch` and the benchmark's ceiling reach the
            // running server's embedded engine.
            let endpoint_file = data_dir.join(local_engine::ENDPOINT_FILE);
            scim_local::engine::private_dir::write_private(&endpoint_file, &embedded.endpoint)
                .map_err(|e| format!("cannot write {}: {e}", endpoint_file.display()))?;
            // The server itself reaches it in process (same SDK calls, no loopback socket), unless asked to
            // go through the engine's HTTP listener (to compare the two: docs/benchmark.md).
            let (store, transport) = match std::env::var("SCIM_EMBEDDED_TRANSPORT").as_deref() {
                Ok("http") => (
                    embedded
                        .http_store(store_cfg.table.clone(), store_cfg.call_timeout)
                        .with_events_table(store_cfg.events_table.clone()),
                    "over loopback HTTP",
                ),
                Ok("in-process") | Err(_) => (
                    embedded
                        .store(store_cfg.table.clone(), store_cfg.call_timeout)
                        .with_events_table(store_cfg.events_table.clone()),
                    "in process",
                ),
                Ok(other) => {
                    return Err(format!(
                        "SCIM_EMBEDDED_TRANSPORT must be in-process or http, not {other:?}"
                    ))
                }
            };
            embedded.sweep_ttl_every(std::time::Duration::from_secs(3600));
            events_store = Some(
                embedded
                    .store(store_cfg.table.clone(), store_cfg.call_timeout)
                    .with_events_table(store_cfg.events_table.clone()),
            );
            (
                store,
                embedded.endpoint,
                format!(
                    "embedded DynamoDB engine (dynoxide) on {}, reached {transport}",
                    file.display()
                ),
            )
        }
    };
    store.create_table_if_missing().await.map_err(|e| {
        format!(
            "cannot create table {} on {endpoint}: {e:?}",
            store_cfg.table
        )
    })?;
    // Data directories from before the events table had the change events' items in the table: moved once,
    // before the consumer appends anything (docs/events.md, "The events table").
    store.move_events().await.map_err(|e| {
        format!(
            "cannot move the change events into {}: {e:?}",
            store_cfg.events_table
        )
    })?;

    let (token, token_origin) =
        credential(&data_dir, "SCIM_BEARER_TOKEN", local_engine::TOKEN_FILE)?;
    // OAuth 2.0 (token endpoint, access tokens): signing keys kept in the data directory (0600).
    let auth = Auth::from_token(&token)?
        .with_oauth(Some(scim_local::cli::clients::local_oauth(&data_dir)?));
    // The operator page's own credential: never the SCIM token.
    let (admin_token, admin_origin) = credential(&data_dir, "SCIM_ADMIN_TOKEN", "admin-token")?;
    if admin_token.trim() == token.trim() {
        return Err("the admin token must differ from the SCIM bearer token".into());
    }
    let admin = Arc::new(scim_local::admin::AdminAuth::new(&admin_token)?);
    let http_cfg = HttpConfig::from_env();
    let base_path = http_cfg.base_path.clone();
    let profile = scim_core::profile::Profile::from_env()?;
    // Change events (docs/events.md): the table's stream → the events log (the Events API) → the webhook.
    let events = match std::env::var("SCIM_EVENTS").as_deref() {
        Ok("off") => None,
        _ => {
            let (events_store, signed) = match events_store {
                Some(s) => (s, false),
                None => (store.clone(), true),
            };
            let webhook = scim_local::delivery::webhook_from_env(&data_dir)?;
            Some(
                scim_local::delivery::start(
                    &events_store,
                    &endpoint,
                    signed,
                    &scim_core::events::EventsConfig::from_env(),
                    webhook,
                )
                .await?,
            )
        }
    };
    let mut state = AppState::with_profile(
        Service::new(Arc::new(store), Limits::from_env()),
        auth,
        http_cfg,
        &profile,
    );
    state.events = events.as_ref().map(|e| e.log.clone());
    scim_core::manage::offboard::resume_in_background(
        state.service.store.clone(),
        state.gate.clone(),
    );

    let listen = std::env::var("SCIM_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("SCIM server ready");
    println!(
        "  Tenant URL:   {}",
        scim_local::server::tenant_url(addr, &base_path)
    );
    // A generated token is shown once, when it is made; a kept or configured one is never echoed.
    let token_ref = match &token_origin {
        TokenOrigin::Generated(file) => {
            println!(
                "  Secret Token: {token}   (generated now and shown only this once; kept in {})",
                file.display()
            );
            format!("$(cat {})", file.display())
        }
        TokenOrigin::Kept(file) => {
            println!(
                "  Secret Token: kept in {} (not printed; run: cat {})",
                file.display(),
                file.display()
            );
            format!("$(cat {})", file.display())
        }
        TokenOrigin::Configured => {
            println!("  Secret Token: from SCIM_BEARER_TOKEN (not printed)");
            "$SCIM_BEARER_TOKEN".to_string()
        }
    };
    // Lets `scim-admin status` find the running server's operator API.
    let admin_file = data_dir.join("admin-endpoint");
    scim_local::engine::private_dir::write_private(&admin_file, &format!("http://{addr}/admin"))
        .map_err(|e| format!("cannot write {}: {e}", admin_file.display()))?;
    let admin_where = match &admin_origin {
        TokenOrigin::Generated(f) | TokenOrigin::Kept(f) => {
            format!("admin token in {}", f.display())
        }
        TokenOrigin::Configured => "admin token from SCIM_ADMIN_TOKEN".into(),
    };
    println!("  Operations:   http://{addr}/admin ({admin_where}; scim-admin status <tenant>)");
    println!("  Store:        {engine}, table {}", store_cfg.table);
    println!("  Profile:      {} ({})", profile.name, profile.description);
    if events.is_some() {
        println!(
            "  Events:       {}/Events (change events; docs/events.md)",
            scim_local::server::tenant_url(addr, &base_path)
        );
    }
    println!("  Tenants:      http://{addr}/<tenant>{base_path} with tokens from scim-admin");
    println!("  OAuth:        token URL http://{addr}/<tenant>/oauth2/token (or http://{addr}/oauth2/token); clients: scim-admin client create <tenant>");
    println!("  Try:          curl -H \"Authorization: Bearer {token_ref}\" '{}/Users?filter=userName%20eq%20%22nobody%22'", scim_local::server::tenant_url(addr, &base_path));
    let webhook = events.as_ref().and_then(|e| e.webhook.clone());
    let app = scim_local::server::app_with_webhook(state, Some(admin), webhook);
    scim_local::server::serve(app, listener)
        .await
        .map_err(|e| format!("server error: {e}"))
}

/// Lines waiting for the log writer at most (beyond them, a request's log line waits for room: none is
/// dropped). About 2.5 MB of the compact format's ~300-byte lines.
const LOG_LINES_BUFFERED: usize = 8192;

/// Logging with the lines written to stdout by a thread of their own, from a bounded queue through a
/// 64 KiB buffer flushed whenever the queue is empty: under load many request lines go out in one
/// write instead of one write each (a write per line was 3 % of the server's CPU on `userName eq`
/// reads, docs/benchmark.md). The returned guard flushes what is left when dropped.
/// `tracing-appender`'s non-blocking writer, rather than our own thread and queue: it is the tracing
/// project's, and does exactly this.
fn init_logging() -> tracing_appender::non_blocking::WorkerGuard {
    let out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LOG_LINES_BUFFERED)
        .thread_name("scim-log")
        .finish(out);
    scim_core::logging::init_with(writer);
    guard
}

/// Where a credential came from (decides whether the banner may show it).
enum TokenOrigin {
    /// Made at this start and written to this file: shown once.
    Generated(PathBuf),
    /// Read from this file, made at an earlier start: never shown again.
    Kept(PathBuf),
    /// From the environment: the operator has it; never echoed.
    Configured,
}

/// The credential in the environment variable `env`, or the one kept in `data_dir/file`, or a new one
/// written there (mode 0600).
fn credential(data_dir: &Path, env: &str, file: &str) -> Result<(String, TokenOrigin), String> {
    if let Ok(t) = std::env::var(env) {
        return Ok((t, TokenOrigin::Configured));
    }
    let file = data_dir.join(file);
    if let Ok(t) = std::fs::read_to_string(&file) {
        return Ok((t.trim().to_string(), TokenOrigin::Kept(file)));
    }
    let t = auth::generate_token();
    scim_local::engine::private_dir::create_private(&file, &t)
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok((t, TokenOrigin::Generated(file)))
}
