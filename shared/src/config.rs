//! Configuration from environment variables: nothing is hard-coded, nothing is machine-specific.
//! Every variable is documented in the README ("Configuration").

use std::time::Duration;

/// Limits enforced before expensive work; each is configurable and documented.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted (`SCIM_MAX_BODY_BYTES`, default 1 MiB) → 413 above it.
    pub max_body_bytes: usize,
    /// Longest `filter` accepted (`SCIM_MAX_FILTER_LEN`, default 4096 characters) → 400 above it.
    pub max_filter_len: usize,
    /// Most operations in one PATCH (`SCIM_MAX_PATCH_OPS`, default 1000) → 400 above it.
    pub max_patch_ops: usize,
    /// Largest page (`SCIM_MAX_PAGE_SIZE`, default 200): a larger `count` is lowered to it (RFC 7644 §3.4.2.4).
    pub max_page_size: usize,
    /// Page size when the client gives no `count` (`SCIM_DEFAULT_PAGE_SIZE`, default 100).
    pub default_page_size: usize,
    /// Most resources a filter that no index serves may examine (`SCIM_MAX_FILTER_SCAN`, default 10000);
    /// past it the answer is 400 `tooMany` rather than an unbounded read.
    pub max_filter_scan: usize,
    /// Attempts at an optimistic read-modify-write before answering 409/503 (`SCIM_WRITE_ATTEMPTS`, default 16).
    pub write_attempts: u32,
    /// Most members a group may return in one response, and hold when its member list must be read
    /// whole (clear/replace) (`SCIM_MAX_GROUP_MEMBERS`, default 20000) → 400 `tooMany` above.
    pub max_group_members: usize,
    /// Most membership changes in one request (`SCIM_MAX_MEMBER_CHANGES`, default 1000) → 413 above.
    pub max_member_changes: usize,
    /// Most attribute values in one resource, counting every leaf value of every attribute, sub-attribute
    /// and multi-valued element (`SCIM_MAX_ATTRIBUTE_VALUES`, default 1000) → 400 above.
    pub max_attribute_values: usize,
    /// Longest string value, in characters (`SCIM_MAX_VALUE_LEN`, default 16384) → 400 above.
    pub max_value_len: usize,
    /// Most operations in one `/Bulk` request (`SCIM_BULK_MAX_OPERATIONS`, default 50, Jostle's) → 413 above.
    pub bulk_max_operations: usize,
    /// Largest `/Bulk` body (`SCIM_BULK_MAX_PAYLOAD`, default 20 MB, Jostle's; API Gateway and Lambda cap
    /// requests at 10 MB and 6 MB) → 413, from `Content-Length` before the body is read.
    pub bulk_max_payload: usize,
    /// Largest response body, counted as [`lambda_body_len`] counts it (`SCIM_MAX_RESPONSE_BYTES`, default
    /// [`RESPONSE_BYTES_DEFAULT`], at least [`RESPONSE_BYTES_MIN`]): list and `.search` pages stop before
    /// the resource that would pass it, `/Bulk` answers the operations it has no room left for without
    /// running them, and a group whose members would pass it is refused (docs/store.md, "Response size").
    pub max_response_bytes: usize,
}

/// The default bound on one response body: 5 MiB as Lambda carries it. A Lambda function's response
/// may be at most 6 MB *including* API Gateway's JSON envelope, in which the body is one
/// JSON string; the remaining MiB is for the envelope and the headers. Every response that can grow with
/// the data (list pages, `/Bulk`, the Events API) is held under this one figure.
pub const RESPONSE_BYTES_DEFAULT: usize = 5 * 1024 * 1024;

/// The smallest response bound accepted: every User fits in it, so a page always makes progress. A
/// stored user document is at most ~372 KB, its `groups` (≈ 1,000 ids) ~180 KB rendered, and escaping
/// at most doubles the document's bytes (see [`lambda_body_len`]).
pub const RESPONSE_BYTES_MIN: usize = 1024 * 1024;

/// The bytes `body` (a JSON text) takes in a Lambda response: API Gateway's envelope carries the body
/// as a JSON string (`application/scim+json` is sent as text, not base64), in which every `"` and `\`
/// gains a backslash. serde_json already writes control characters escaped and leaves other characters
/// as they are, so nothing else grows. At most twice `body.len()`.
pub fn lambda_body_len(body: &str) -> usize {
    body.len() + body.bytes().filter(|b| matches!(b, b'"' | b'\\')).count()
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_filter_len: 4096,
            max_patch_ops: 1000,
            max_page_size: 200,
            default_page_size: 100,
            max_filter_scan: 10_000,
            write_attempts: 16,
            max_group_members: 20_000,
            max_member_changes: 1000,
            max_attribute_values: 1000,
            max_value_len: 16_384,
            bulk_max_operations: 50,
            bulk_max_payload: 20 * 1024 * 1024,
            max_response_bytes: RESPONSE_BYTES_DEFAULT,
        }
    }
}

impl Limits {
    pub fn from_env() -> Self {
        let d = Limits::default();
        Limits {
            max_body_bytes: env_num("SCIM_MAX_BODY_BYTES", d.max_body_bytes),
            max_filter_len: env_num("SCIM_MAX_FILTER_LEN", d.max_filter_len),
            max_patch_ops: env_num("SCIM_MAX_PATCH_OPS", d.max_patch_ops),
            max_page_size: env_num("SCIM_MAX_PAGE_SIZE", d.max_page_size).max(1),
            default_page_size: env_num("SCIM_DEFAULT_PAGE_SIZE", d.default_page_size).max(1),
            max_filter_scan: env_num("SCIM_MAX_FILTER_SCAN", d.max_filter_scan).max(1),
            write_attempts: env_num("SCIM_WRITE_ATTEMPTS", d.write_attempts).max(1),
            max_group_members: env_num("SCIM_MAX_GROUP_MEMBERS", d.max_group_members).max(1),
            max_member_changes: env_num("SCIM_MAX_MEMBER_CHANGES", d.max_member_changes).max(1),
            max_attribute_values: env_num("SCIM_MAX_ATTRIBUTE_VALUES", d.max_attribute_values)
                .max(1),
            max_value_len: env_num("SCIM_MAX_VALUE_LEN", d.max_value_len).max(1),
            bulk_max_operations: env_num("SCIM_BULK_MAX_OPERATIONS", d.bulk_max_operations).max(1),
            bulk_max_payload: env_num("SCIM_BULK_MAX_PAYLOAD", d.bulk_max_payload).max(1),
            max_response_bytes: env_num("SCIM_MAX_RESPONSE_BYTES", d.max_response_bytes)
                .max(RESPONSE_BYTES_MIN),
        }
    }
}

/// Where the DynamoDB store lives.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Table name (`SCIM_TABLE`, default `scim`).
    pub table: String,
    /// The change events' table: the events log, the stream consumer's checkpoints, the webhook positions
    /// (`SCIM_EVENTS_TABLE`, default `<table>-events`). A table without a stream, so that logging events
    /// makes no stream records of its own.
    pub events_table: String,
    /// Endpoint override (`SCIM_DYNAMODB_ENDPOINT`, else the SDK's own `AWS_ENDPOINT_URL_DYNAMODB` /
    /// `AWS_ENDPOINT_URL`, else AWS). Region and credentials come from the standard AWS chain.
    pub endpoint: Option<String>,
    /// Timeout of one DynamoDB call attempt (`SCIM_DYNAMODB_TIMEOUT_MS`, default 3000).
    pub call_timeout: Duration,
}

/// The change events' table of `table` when none is named: `<table>-events`.
pub fn default_events_table(table: &str) -> String {
    format!("{table}-events")
}

impl StoreConfig {
    pub fn from_env() -> Self {
        let table = std::env::var("SCIM_TABLE")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "scim".into());
        StoreConfig {
            events_table: std::env::var("SCIM_EVENTS_TABLE")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| default_events_table(&table)),
            table,
            endpoint: std::env::var("SCIM_DYNAMODB_ENDPOINT")
                .ok()
                .filter(|s| !s.is_empty()),
            call_timeout: Duration::from_millis(env_num("SCIM_DYNAMODB_TIMEOUT_MS", 3000u64)),
        }
    }
}

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Path prefix of the SCIM API (`SCIM_BASE_PATH`, default `/scim/v2`).
    pub base_path: String,
    /// Absolute base URL used in `Location` and `meta.location` (`SCIM_PUBLIC_URL`, e.g.
    /// `https://abc.execute-api.eu-west-1.amazonaws.com/scim/v2`). Without it, the URL is derived from
    /// the request's `Host` and `X-Forwarded-Proto` headers and the base path.
    pub public_url: Option<String>,
    /// Add an `X-Scim-DynamoDB-Calls` header to every response (`SCIM_EXPOSE_CALL_COUNT=1`; off by
    /// default; the tests and the benchmark turn it on).
    pub expose_call_count: bool,
    /// Longest time a request body may take to arrive once its headers are in (`SCIM_BODY_READ_TIMEOUT_SECS`,
    /// default 30) → 408 and the connection closed; a body trickled byte by byte cannot hold a request open.
    pub body_read_timeout: Duration,
}

impl HttpConfig {
    pub fn from_env() -> Self {
        HttpConfig {
            base_path: normalise_base_path(
                &std::env::var("SCIM_BASE_PATH").unwrap_or_else(|_| "/scim/v2".into()),
            ),
            public_url: std::env::var("SCIM_PUBLIC_URL")
                .ok()
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_end_matches('/').to_string()),
            expose_call_count: env_flag("SCIM_EXPOSE_CALL_COUNT"),
            body_read_timeout: Duration::from_secs(
                env_num("SCIM_BODY_READ_TIMEOUT_SECS", 30u64).max(1),
            ),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            base_path: "/scim/v2".into(),
            public_url: None,
            expose_call_count: false,
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// True when running inside AWS Lambda.
pub fn on_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// `scim/v2/` → `/scim/v2`; `/` or empty → `` (API at the root).
pub fn normalise_base_path(p: &str) -> String {
    let t = p.trim().trim_matches('/');
    if t.is_empty() {
        String::new()
    } else {
        format!("/{t}")
    }
}

pub(crate) fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

pub(crate) fn env_flag(name: &str) -> bool {
    matches!(
        std::env::var(name).as_deref(),
        Ok("1") | Ok("true") | Ok("yes") | Ok("on")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_is_normalised() {
        assert_eq!(normalise_base_path("scim/v2/"), "/scim/v2");
        assert_eq!(normalise_base_path("/scim/v2"), "/scim/v2");
        assert_eq!(normalise_base_path("/"), "");
        assert_eq!(normalise_base_path(""), "");
    }

    #[test]
    fn lambda_body_len_counts_the_escapes_of_the_envelope() {
        for body in [r#"{"a":"b"}"#, r#"{"q":"say \"hi\" \\ \u0001 é"}"#, "[]"] {
            let envelope =
                serde_json::to_string(&serde_json::Value::String(body.to_string())).unwrap();
            assert_eq!(lambda_body_len(body), envelope.len() - 2, "{body}");
        }
    }
}
