//! Change events survive a crash: `scim-local` (its embedded engine on a file) is killed with SIGKILL in
//! the middle of a storm of creates, then started again on the same data directory. Every create it
//! acknowledged (201) has its `user.created` event, and every user in the directory has exactly one
//! (docs/events.md, "Guarantees"). The embedded engine only: with another DynamoDB API the data does not
//! live in the killed process.
#![cfg(unix)]

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn start(bin: &Path, data: &Path, token: &str) -> (scim_tests::KillOnDrop, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = scim_tests::KillOnDrop(
        scim_tests::local_command(bin, data, port)
            .env("SCIM_BEARER_TOKEN", token)
            .env("SCIM_EVENTS_POLL_MS", "50")
            .env("RUST_LOG", "warn")
            .env_remove("SCIM_EVENTS")
            .spawn()
            .expect("start scim-local"),
    );
    let base = format!("http://127.0.0.1:{port}/scim/v2");
    assert!(
        scim_tests::local_server_up(&base, token, || true).await,
        "scim-local did not start"
    );
    (server, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_has_its_event_after_a_kill_9() {
    let bin = scim_tests::local_binary();
    let data = std::env::temp_dir().join(format!("scim-events-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let token = scim_core::auth::generate_token();
    let (mut server, base) = start(&bin, &data, &token).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // The storm: 6 writers creating users (each create is one transaction of three items) as fast as
    // they can; a 201 is an acknowledged write.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..6 {
        let (client, base, token, acked, stop) = (
            client.clone(),
            base.clone(),
            token.clone(),
            acked.clone(),
            stop.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("storm-{w}-{i}@contoso.com"), "active": true});
                let r = client.post(format!("{base}/Users")).bearer_auth(&token).header("content-type", "application/scim+json").body(body.to_string()).send().await;
                match r {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let v: Value = r.json().await.unwrap_or(Value::Null);
                        if let Some(id) = v["id"].as_str() {
                            acked.lock().unwrap().push(id.to_string());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // SIGKILL: no shutdown, no flush, in the middle of writes and of the consumer's work.
    server.0.kill().expect("kill -9");
    server.0.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 20,
        "the storm wrote too little to mean anything: {}",
        acked.len()
    );

    let (_server, base) = start(&bin, &data, &token).await;
    // Read the events until every acknowledged create has its event (the consumer resumes from its
    // checkpoint and catches up).
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut created: HashMap<String, usize> = HashMap::new();
    let mut ids = HashSet::new();
    let mut total = 0usize;
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}/Events?limit=1000&after={c}"),
            None => format!("{base}/Events?limit=1000"),
        };
        let page: Value = client
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for e in page["events"].as_array().expect("events") {
            total += 1;
            assert!(
                ids.insert(e["id"].as_str().unwrap().to_string()),
                "event {} delivered twice",
                e["id"]
            );
            if e["type"] == "user.created" {
                *created
                    .entry(e["resourceId"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
        cursor = page["nextCursor"].as_str().map(str::to_string);
        let missing = acked.iter().filter(|id| !created.contains_key(*id)).count();
        if missing == 0 && page["hasMore"] == false {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} acknowledged creates have no event",
            acked.len()
        );
        if page["hasMore"] == false {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Let the consumer finish whatever it still had (writes committed but not acknowledged), then every
    // user in the directory has exactly one created event, and no event names a user that is not there.
    tokio::time::sleep(Duration::from_millis(500)).await;
    loop {
        let url = format!(
            "{base}/Events?limit=1000&after={}",
            cursor.as_deref().unwrap()
        );
        let page: Value = client
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for e in page["events"].as_array().unwrap() {
            total += 1;
            assert!(
                ids.insert(e["id"].as_str().unwrap().to_string()),
                "event delivered twice"
            );
            if e["type"] == "user.created" {
                *created
                    .entry(e["resourceId"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
        cursor = page["nextCursor"].as_str().map(str::to_string);
        if page["hasMore"] == false {
            break;
        }
    }
    let users: Value = client
        .get(format!("{base}/Users?count=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let in_directory = users["totalResults"].as_u64().unwrap() as usize;
    assert!(created.values().all(|n| *n == 1));
    assert_eq!(
        created.len(),
        in_directory,
        "created events vs users in the directory"
    );
    eprintln!(
        "kill -9 during a write storm: {} creates acknowledged, {} users committed, {} user.created events after the restart ({} events in all), none missing, none twice",
        acked.len(),
        in_directory,
        created.len(),
        total
    );
    let _ = std::fs::remove_dir_all(&data);
}
