//! Log set-up: JSON lines on Lambda (CloudWatch), compact text locally. `RUST_LOG` filters as usual.

use tracing_subscriber::EnvFilter;

/// True when running inside AWS Lambda.
pub use crate::config::on_lambda;

/// Install the global subscriber once; later calls are no-ops (tests call it freely).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = on_lambda() || std::env::var("SCIM_LOG_FORMAT").as_deref() == Ok("json");
    let result = if json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(false)
            .with_span_list(false)
            .without_time() // CloudWatch stamps every line
            .try_init()
    } else {
        // Colours only on a terminal: a log file or pipe gets plain text.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        tracing_subscriber::fmt()
            .compact()
            .with_ansi(ansi)
            .with_env_filter(filter)
            .try_init()
    };
    let _ = result;
}
