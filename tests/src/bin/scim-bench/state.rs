//! The run's shared state (options, client, recorder, the users and groups made) and its workers.

use crate::client::Scim;
use crate::opts::Opts;
use crate::record::Recorder;
use serde_json::Value;
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub(crate) struct UserInfo {
    pub(crate) idx: usize,
    pub(crate) id: String,
    pub(crate) name: String,
}

pub(crate) struct GroupInfo {
    pub(crate) id: String,
    pub(crate) members: Mutex<HashSet<usize>>,
}

pub(crate) struct Ctx {
    pub(crate) scim: Scim,
    pub(crate) rec: Recorder,
    pub(crate) o: Opts,
    pub(crate) run: String,
    pub(crate) users: Mutex<Vec<Option<UserInfo>>>,
    pub(crate) groups: Mutex<Vec<Arc<GroupInfo>>>,
    pub(crate) started: Instant,
    /// Summaries of the full walks (scale and walk scenarios).
    pub(crate) walks: Mutex<Vec<Value>>,
}

impl Ctx {
    pub(crate) fn deadline(&self, secs: u64) -> Instant {
        Instant::now() + Duration::from_secs(secs.min(self.o.max_phase_secs))
    }
    pub(crate) fn live_users(&self) -> Vec<UserInfo> {
        self.users
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }
}

pub(crate) async fn run_workers<F, Fut>(n: usize, f: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|w| tokio::spawn(f(w))).collect();
    for h in handles {
        if let Err(e) = h.await {
            eprintln!("scim-bench: a worker failed: {e}");
        }
    }
}
