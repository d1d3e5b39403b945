//! Running the router on AWS Lambda: `lambda_http`'s adapter, with the event's query string first made a
//! valid URI. API Gateway hands `rawQueryString` over exactly as the client sent it — Entra's raw double
//! quotes included — and `lambda_http` builds the request URI from it, failing (a panic in its conversion)
//! on a `"`; [`super::request_target::escape`] percent-encodes just those bytes, so the query is decoded
//! exactly once, by the SCIM code, as on the local server.
//!
//! Imports: `request_target` of `http`; nothing else of the crate (it serves whichever router it is given).

use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{lambda_runtime, Adapter, LambdaEvent, Request};
use serde_json::Value;
use tower::ServiceExt;

/// Serve `router` as this Lambda function's handler (in place of `lambda_http::run`).
pub async fn run(router: Router) -> Result<(), lambda_http::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<Value>| {
            let adapter: Adapter<'static, _, Router> = Adapter::from(router.clone());
            async move {
                let LambdaEvent { payload, context } = event;
                let request: LambdaRequest = serde_json::from_value(repair(payload))?;
                Ok::<_, lambda_http::Error>(
                    adapter.oneshot(LambdaEvent::new(request, context)).await?,
                )
            }
        },
    ))
    .await
}

/// An API Gateway / ALB event (JSON text) as the request the router sees, converted exactly as [`run`]
/// converts it (for tests and tools).
pub fn request_from_str(event: &str) -> Result<Request, serde_json::Error> {
    let request: LambdaRequest = serde_json::from_value(repair(serde_json::from_str(event)?))?;
    Ok(request.into())
}

/// The event with its raw query string (API Gateway HTTP API, payload 2.0) made a valid URI query.
fn repair(mut event: Value) -> Value {
    if let Some(Value::String(q)) = event.get_mut("rawQueryString") {
        if let std::borrow::Cow::Owned(escaped) = super::request_target::escape(q) {
            *q = escaped;
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_quotes_in_the_query_string_are_escaped_once() {
        let event = serde_json::json!({"rawQueryString": "filter=userName+eq+\"a%40b.c\"", "rawPath": "/scim/v2/Users"});
        assert_eq!(
            repair(event)["rawQueryString"],
            "filter=userName+eq+%22a%40b.c%22"
        );
    }
}
