//! Log set-up: JSON lines on Lambda (CloudWatch), compact text locally. `RUST_LOG` filters by level, for
//! everything (`info`, `debug`) or per target (`scim_core=debug,warn`).
//!
//! The filter is `tracing_subscriber`'s `Targets`, not its `EnvFilter`: `EnvFilter` also matches span
//! and field values with regular expressions, which nothing here uses, and its regex engine was the
//! largest part of every Lambda package that logging brought in (docs/deploy.md, "Package sizes").
//! A `RUST_LOG` that does not parse as targets and levels logs at `info`, and says so.

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// True when running inside AWS Lambda.
pub use crate::config::on_lambda;

/// The filter `RUST_LOG` asks for (`info` when unset), or `info` and the reason it was not understood.
fn filter(rust_log: Option<&str>) -> (Targets, Option<String>) {
    let default = || Targets::new().with_default(Level::INFO);
    match rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        None => (default(), None),
        Some(v) => match v.parse::<Targets>() {
            Ok(t) => (t, None),
            Err(e) => (
                default(),
                Some(format!("RUST_LOG not understood ({e}); logging at info")),
            ),
        },
    }
}

/// Install the global subscriber once, writing to stdout; later calls are no-ops (tests call it freely).
pub fn init() {
    init_with(std::io::stdout);
}

/// [`init`], writing the lines through `writer` (the local server's goes through a buffer that a thread
/// of its own writes out: `scim-local`'s `main`).
pub fn init_with<W>(writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let (filter, problem) = filter(std::env::var("RUST_LOG").ok().as_deref());
    let json = on_lambda() || std::env::var("SCIM_LOG_FORMAT").as_deref() == Ok("json");
    let result = if json {
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .without_time() // CloudWatch stamps every line
            .with_writer(writer);
        tracing_subscriber::registry()
            .with(layer.with_filter(filter))
            .try_init()
    } else {
        // Colours only on a terminal: a log file or pipe gets plain text.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        let layer = tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(ansi)
            .with_writer(writer);
        tracing_subscriber::registry()
            .with(layer.with_filter(filter))
            .try_init()
    };
    if result.is_ok() {
        if let Some(p) = problem {
            tracing::warn!("{p}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;

    #[test]
    fn rust_log_filters_by_level_and_target() {
        let (f, p) = filter(None);
        assert!(p.is_none());
        assert!(f.would_enable("scim_core::store", &Level::INFO));
        assert!(!f.would_enable("scim_core::store", &Level::DEBUG));

        let (f, p) = filter(Some("debug"));
        assert!(p.is_none());
        assert!(f.would_enable("aws_smithy_runtime", &Level::DEBUG));

        let (f, _) = filter(Some("scim_core=debug,warn"));
        assert!(f.would_enable("scim_core::store::dynamo", &Level::DEBUG));
        assert!(!f.would_enable("hyper", &Level::INFO));
        assert!(f.would_enable("hyper", &Level::WARN));

        let (f, _) = filter(Some("off"));
        assert_eq!(f.default_level(), Some(LevelFilter::OFF));
    }

    #[test]
    fn a_rust_log_that_does_not_parse_logs_at_info_and_says_why() {
        let (f, p) = filter(Some("scim_core=loud"));
        assert!(p.expect("a reason").contains("RUST_LOG not understood"));
        assert!(f.would_enable("scim_core", &Level::INFO));
        assert!(!f.would_enable("scim_core", &Level::DEBUG));
    }
}
