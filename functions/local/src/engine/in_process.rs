//! The AWS SDK's transport to the embedded engine, in process: the SDK builds, signs and parses every
//! DynamoDB call exactly as it does against AWS, and this connector hands the request body to dynoxide's
//! `Database` instead of sending it over a loopback socket.
//!
//! Why hand-written: the SDK lets any `HttpClient` carry its requests, and dynoxide exposes its operations
//! as typed calls whose request and response types are the DynamoDB JSON shapes (serde), but neither crate
//! ships the glue. Over loopback HTTP, each DynamoDB call cost an extra HTTP client and server exchange
//! inside the same process (two socket writes, two reads, header parsing on both sides); the profile of
//! `GET /Users/{id}` put about a third of the server's CPU there. See docs/benchmark.md ("Profile").
//!
//! Other processes (`scim-admin`, the benchmark's ceiling) reach the same engine through its signed HTTP
//! listener ([`crate::engine::engine_door`]), which hands verified requests to [`answer_json`] here.

use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use dynoxide::errors::DynoxideError;
use dynoxide::Database;
use serde::de::DeserializeOwned;
use serde::Serialize;

const TARGET_PREFIX: &str = "DynamoDB_20120810.";
/// The DynamoDB Streams API (change events read the table's stream: docs/events.md).
const STREAMS_TARGET_PREFIX: &str = "DynamoDBStreams_20120810.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// An SDK HTTP client whose every request is answered by `db`, in this process.
pub fn http_client(db: Database) -> SharedHttpClient {
    let connector = SharedHttpConnector::new(InProcess { db });
    http_client_fn(move |_, _| connector.clone())
}

#[derive(Clone)]
struct InProcess {
    db: Database,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcess(dynoxide)")
    }
}

impl HttpConnector for InProcess {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        // The engine works synchronously (dynoxide's own HTTP server also runs it on the request's task).
        HttpConnectorFuture::ready(self.answer(&request))
    }
}

impl InProcess {
    fn answer(&self, request: &HttpRequest) -> Result<HttpResponse, ConnectorError> {
        let target = request.headers().get("x-amz-target").unwrap_or("");
        let Some(bytes) = request.body().bytes() else {
            // The SDK's DynamoDB requests are always in memory; a streaming body would be a bug here.
            return Err(ConnectorError::other(
                "the in-process DynamoDB connector needs an in-memory body".into(),
                None,
            ));
        };
        let (status, json) = answer_json(&self.db, target, bytes);
        respond(status, json)
    }
}

/// One DynamoDB call, `x-amz-target` + JSON body → (HTTP status, JSON answer), errors as DynamoDB words.
/// Shared by the in-process connector and the engine's door for other processes ([`crate::engine::engine_door`]).
pub(crate) fn answer_json(db: &Database, target: &str, body: &[u8]) -> (u16, String) {
    let Some(operation) = target.strip_prefix(TARGET_PREFIX).or_else(|| {
        target
            .strip_prefix(STREAMS_TARGET_PREFIX)
            .filter(|op| is_streams_operation(op))
    }) else {
        return (400, error_body("UnknownOperationException", ""));
    };
    let Ok(body) = std::str::from_utf8(body) else {
        return (400, error_body("SerializationException", ""));
    };
    match dispatch(db, operation, body) {
        Ok(json) => (200, json),
        Err(e) => (e.status_code(), e.to_json()),
    }
}

fn respond(status: u16, body: String) -> Result<HttpResponse, ConnectorError> {
    let status = StatusCode::try_from(status).map_err(|e| ConnectorError::other(e.into(), None))?;
    let mut resp = HttpResponse::new(status, SdkBody::from(body));
    resp.headers_mut().insert("content-type", CONTENT_TYPE);
    Ok(resp)
}

fn error_body(kind: &str, message: &str) -> String {
    serde_json::json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message}).to_string()
}

/// One typed call: JSON request → dynoxide → JSON response.
fn call<Req: DeserializeOwned, Resp: Serialize>(
    body: &str,
    op: impl FnOnce(Req) -> dynoxide::Result<Resp>,
) -> Result<String, DynoxideError> {
    let req = serde_json::from_str(body)
        .map_err(|e| DynoxideError::ValidationException(readable(&e.to_string())))?;
    let resp = op(req)?;
    serde_json::to_string(&resp).map_err(|e| DynoxideError::InternalServerError(e.to_string()))
}

/// dynoxide's request types tag their refusals for its HTTP layer (`VALIDATION:…`) and serde_json adds a
/// position; neither belongs in the message.
fn readable(msg: &str) -> String {
    let msg = match msg.split_once(':') {
        Some((tag, rest))
            if !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') =>
        {
            rest
        }
        _ => msg,
    };
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// The SDK gives every TransactWriteItems a `ClientRequestToken`, so that a retry after a lost answer
/// cannot apply a transaction twice. dynoxide keeps each token for 10 minutes and scans all of them on
/// every transaction (`evict_expired`, a `retain` over the whole cache, under its lock), so each write
/// cost grew with the writes of the last 10 minutes: loading users, creates fell from 2,000/s to 760/s
/// within 30,000 users (docs/benchmark.md, "Profile"). In process an answer cannot be lost on the way
/// back — the call returns or the process is gone — so the token protects nothing here and is dropped.
/// Over HTTP (moto, AWS) the SDK's token stays.
fn without_request_token(
    mut r: dynoxide::actions::transact_write_items::TransactWriteItemsRequest,
) -> dynoxide::actions::transact_write_items::TransactWriteItemsRequest {
    r.client_request_token = None;
    r
}

/// The operations of the Streams API (served by the same engine under their own target prefix).
fn is_streams_operation(op: &str) -> bool {
    matches!(
        op,
        "ListStreams" | "DescribeStream" | "GetShardIterator" | "GetRecords"
    )
}

/// The operations the store and the tools use (and the rest of the item and table API, so nothing the SDK
/// can send is refused by accident).
fn dispatch(db: &Database, operation: &str, body: &str) -> Result<String, DynoxideError> {
    match operation {
        "GetItem" => call(body, |r| db.get_item(r)),
        "Query" => call(body, |r| db.query(r)),
        "PutItem" => call(body, |r| db.put_item(r)),
        "UpdateItem" => call(body, |r| db.update_item(r)),
        "DeleteItem" => call(body, |r| db.delete_item(r)),
        "Scan" => call(body, |r| db.scan(r)),
        "BatchGetItem" => call(body, |r| db.batch_get_item(r)),
        "BatchWriteItem" => call(body, |r| db.batch_write_item(r)),
        "TransactWriteItems" => call(body, |r| db.transact_write_items(without_request_token(r))),
        "TransactGetItems" => call(body, |r| db.transact_get_items(r)),
        "CreateTable" => call(body, |r| db.create_table(r)),
        "DescribeTable" => call(body, |r| db.describe_table(r)),
        "DeleteTable" => call(body, |r| db.delete_table(r)),
        "ListTables" => call(body, |r| db.list_tables(r)),
        "UpdateTable" => call(body, |r| db.update_table(r)),
        "UpdateTimeToLive" => call(body, |r| db.update_time_to_live(r)),
        "DescribeTimeToLive" => call(body, |r| db.describe_time_to_live(r)),
        "ListStreams" => call(body, |r| db.list_streams(r)),
        "DescribeStream" => call(body, |r| db.describe_stream(r)),
        "GetShardIterator" => call(body, |r| db.get_shard_iterator(r)),
        "GetRecords" => call(body, |r| db.get_records(r)),
        other => Err(DynoxideError::ValidationException(format!(
            "operation {other} is not served in process"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str, body: &str) -> HttpRequest {
        let mut r = HttpRequest::new(SdkBody::from(body.to_string()));
        r.headers_mut().insert("x-amz-target", target.to_string());
        r
    }

    fn text(resp: &HttpResponse) -> String {
        String::from_utf8(resp.body().bytes().unwrap().to_vec()).unwrap()
    }

    #[test]
    fn unknown_target_is_a_400_dynamodb_error() {
        let c = InProcess {
            db: Database::memory().unwrap(),
        };
        let resp = c.answer(&request("Nope.GetItem", "{}")).unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        assert!(text(&resp).contains("UnknownOperationException"));
    }

    #[test]
    fn engine_errors_keep_their_status_and_type() {
        let c = InProcess {
            db: Database::memory().unwrap(),
        };
        let resp = c
            .answer(&request(
                "DynamoDB_20120810.GetItem",
                r#"{"TableName":"missing","Key":{"pk":{"S":"a"}}}"#,
            ))
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        assert!(
            text(&resp).contains("ResourceNotFoundException"),
            "{}",
            text(&resp)
        );
    }

    #[test]
    fn transactions_keep_no_request_token() {
        let c = InProcess {
            db: Database::memory().unwrap(),
        };
        let create = r#"{"TableName":"tab","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],
            "KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#;
        let resp = c
            .answer(&request("DynamoDB_20120810.CreateTable", create))
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{}", text(&resp));
        let tx = |v: &str| {
            format!(
                r#"{{"ClientRequestToken":"same-token","TransactItems":[{{"Put":{{"TableName":"tab","Item":{{"pk":{{"S":"{v}"}}}}}}}}]}}"#
            )
        };
        // With the token kept, the engine would answer the second (different) transaction with
        // IdempotentParameterMismatchException; without it both are applied.
        for v in ["a", "b"] {
            let resp = c
                .answer(&request("DynamoDB_20120810.TransactWriteItems", &tx(v)))
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200, "{}", text(&resp));
        }
        let get = c
            .answer(&request(
                "DynamoDB_20120810.GetItem",
                r#"{"TableName":"tab","Key":{"pk":{"S":"b"}}}"#,
            ))
            .unwrap();
        assert!(text(&get).contains(r#""S":"b""#), "{}", text(&get));
    }

    #[test]
    fn refusals_read_as_dynamodb_words() {
        let c = InProcess {
            db: Database::memory().unwrap(),
        };
        let resp = c
            .answer(&request(
                "DynamoDB_20120810.GetItem",
                r#"{"TableName":"t","Key":{"pk":{"S":"a"}}}"#,
            ))
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let body = text(&resp);
        assert!(
            body.contains("ValidationException")
                && body.contains("Member must have length greater than or equal to 3"),
            "{body}"
        );
        assert!(
            !body.contains("VALIDATION:") && !body.contains(" at line "),
            "{body}"
        );
    }

    #[test]
    fn malformed_json_is_a_400_not_a_panic() {
        let c = InProcess {
            db: Database::memory().unwrap(),
        };
        let resp = c
            .answer(&request("DynamoDB_20120810.GetItem", "{not json"))
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
    }
}
