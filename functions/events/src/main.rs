//! Lambda handler of the table's DynamoDB stream: change events to the events log and the EventBridge
//! bus (docs/events.md, "On AWS"). Answers with the batch item failures its event source mapping retries.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    scim_core::logging::init();
    let publisher: &'static events::Publisher =
        Box::leak(Box::new(events::Publisher::from_env().await?));
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(publisher.handle(&ev.payload).await)
    }))
    .await
}
