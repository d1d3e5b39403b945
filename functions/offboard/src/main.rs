//! Lambda handler run on a schedule (every 5 minutes, infra/template.yaml): carries every tenant being
//! deleted forward with `Manager::run_until` — bounded, resumable batches — until its invocation's
//! deadline less a margin, then stops wherever it is; the next run continues from what the table holds.
//! A Lambda cannot work after it answers, so on AWS this is where offboarding happens (`scim-local` runs
//! it in a background task instead). Its input (the scheduled event) is ignored.

use lambda_http::lambda_runtime::{self, service_fn, Error, LambdaEvent};
use scim_core::manage::{ManageSettings, Manager};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time kept back from the invocation's deadline: the batch under way ends and its record is saved.
const MARGIN: Duration = Duration::from_secs(20);

#[tokio::main]
async fn main() -> Result<(), Error> {
    scim_core::logging::init();
    let state = scim_core::bootstrap::manage_state().await?;
    let manager = Arc::new(
        Manager::new(state.service.store.clone(), ManageSettings::from_env()?)
            .with_gate(state.gate.clone()),
    );
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<serde_json::Value>| {
        let manager = manager.clone();
        async move {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let left = Duration::from_millis(ev.context.deadline.saturating_sub(now_ms));
            let deadline = Instant::now() + left.saturating_sub(MARGIN);
            let progress = manager.run_until(deadline).await.map_err(|e| e.message)?;
            let done = progress.iter().filter(|s| s.done()).count();
            tracing::info!(tenants = progress.len(), done, "offboarding run");
            Ok::<_, Error>(serde_json::json!({"tenants": progress.len(), "done": done}))
        }
    }))
    .await
}
