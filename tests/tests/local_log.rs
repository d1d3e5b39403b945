//! `scim-local`'s log: one line per request on stdout, written by a thread of its own through a buffer
//! (`functions/local/src/main.rs`, `init_logging`). A line is out while the server runs, without waiting
//! for the buffer to fill, and the lines of the last requests before a SIGTERM are all written before the
//! process ends.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn count(lines: &Mutex<Vec<String>>, pred: impl Fn(&str) -> bool) -> usize {
    lines.lock().unwrap().iter().filter(|l| pred(l)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_lines_are_written_while_it_runs_and_none_is_lost_at_a_sigterm() {
    let bin = scim_tests::local_binary();
    let data = std::env::temp_dir().join(format!("scim-local-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let token = scim_core::auth::generate_token();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = scim_tests::KillOnDrop(
        scim_tests::local_command(&bin, &data, port)
            .env("SCIM_BEARER_TOKEN", &token)
            .env("RUST_LOG", "info")
            .env("SCIM_EVENTS", "off")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start scim-local"),
    );
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let stdout = server.0.stdout.take().unwrap();
    let reader = {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        })
    };
    let base = format!("http://127.0.0.1:{port}/scim/v2");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let up = scim_tests::local_server_up(&base, &token, || true).await;
    assert!(up, "scim-local did not start");

    // One request: its line is out while the server runs.
    let r = client
        .get(format!(
            "{base}/Users?filter=userName%20eq%20%22log-probe%22"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let is_probe = |l: &str| l.contains("method=GET") && l.contains("has_filter=true");
    let until = Instant::now() + Duration::from_secs(10);
    while count(&lines, is_probe) == 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        count(&lines, is_probe),
        1,
        "the request's line while the server runs"
    );
    assert!(
        !lines.lock().unwrap().iter().any(|l| l.contains(&token)),
        "no line holds the token"
    );

    // A burst, then SIGTERM at once: every line of the burst is written before the process ends.
    const BURST: usize = 200;
    for i in 0..BURST {
        let r = client
            .get(format!("{base}/Users/no-such-user-{i}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
    }
    let pid = server.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let exit = tokio::task::spawn_blocking(move || {
        let status = server.0.wait();
        (server, status)
    });
    let (_server, status) = tokio::time::timeout(Duration::from_secs(30), exit)
        .await
        .expect("scim-local ends within 30 s of SIGTERM")
        .unwrap();
    assert!(status.unwrap().success(), "a SIGTERM ends it cleanly");
    reader.join().unwrap();
    let burst = count(&lines, |l| {
        l.contains("status=404") && l.contains("/Users/no-such-user-")
    });
    assert_eq!(burst, BURST, "every request's line, none lost at the exit");
    let _ = std::fs::remove_dir_all(&data);
}
