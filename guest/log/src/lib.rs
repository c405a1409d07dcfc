//! accord-log: logging for accord's programs, `tracing` events on stderr.
//!
//! Every program (the agent, the shim, the CLI) installs one subscriber at
//! start with [`init`], configured from the environment:
//!
//! - `ACCORD_LOG_LEVEL`: `error`, `warn`, `info`, `debug` or `trace`, or a
//!   comma-separated list of directives `LEVEL` and `TARGET=LEVEL`, where a
//!   target is a module path (`warn,accord_guest::coordinator=debug`). A
//!   directive for a module applies to its submodules. Unset: the program's
//!   default (`info` for the agent and the shim, `warn` for the CLI, `debug`
//!   with `accord -v`).
//! - `ACCORD_LOG_FORMAT`: `text` (the default: one line an event, `TIME
//!   LEVEL TARGET: MESSAGE key=value …`) or `json` (one JSON object a
//!   line, with `timestamp`, `level`, `target`, `fields` and the `spans`
//!   the event is in, such as the request's `request` id).
//!
//! A bad value is an error that names the variable and what it accepts;
//! the programs refuse to start with one rather than log less than asked.
//!
//! What must never be logged: the seed, the salt, seed shares, workload
//! secrets and private keys. Events carry ids, sizes, hashes of public
//! objects and error messages, never a secret's bytes or a `Debug` of a
//! type that holds one (those types do not implement `Debug` with their
//! contents); the suite's `log_secrets` test runs a whole deployment at
//! `trace` in both formats and searches the output for every secret.

use std::fmt;
use std::str::FromStr;

#[doc(no_inline)]
pub use tracing;
use tracing::Subscriber;
#[doc(no_inline)]
pub use tracing_subscriber;
use tracing_subscriber::Layer;
pub use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The variable that sets the levels.
pub const LEVEL_VAR: &str = "ACCORD_LOG_LEVEL";
/// The variable that sets the format.
pub const FORMAT_VAR: &str = "ACCORD_LOG_FORMAT";

/// How events are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One human-readable line an event.
    Text,
    /// One JSON object a line.
    Json,
}

/// The logging configuration: which events, in which format.
#[derive(Clone, Debug)]
pub struct Config {
    filter: Targets,
    format: Format,
}

/// A bad `ACCORD_LOG_LEVEL` or `ACCORD_LOG_FORMAT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    variable: &'static str,
    value: String,
    expected: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?} is not valid: expected {}",
            self.variable, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

const LEVELS: &str = "error, warn, info, debug or trace, or directives LEVEL and \
                      TARGET=LEVEL separated by commas (e.g. warn,accord_guest::coordinator=debug)";
const FORMATS: &str = "text or json";

impl Config {
    /// The configuration from `level` and `format` (the variables' values,
    /// `None` when unset), with `default` when no level is given.
    pub fn parse(
        level: Option<&str>,
        format: Option<&str>,
        default: LevelFilter,
    ) -> Result<Self, ConfigError> {
        let filter = match level.map(str::trim) {
            None | Some("") => Targets::new().with_default(default),
            Some(text) => parse_levels(text).ok_or_else(|| ConfigError {
                variable: LEVEL_VAR,
                value: text.to_string(),
                expected: LEVELS,
            })?,
        };
        let format = match format.map(str::trim) {
            None | Some("") | Some("text") => Format::Text,
            Some("json") => Format::Json,
            Some(other) => {
                return Err(ConfigError {
                    variable: FORMAT_VAR,
                    value: other.to_string(),
                    expected: FORMATS,
                });
            }
        };
        Ok(Self { filter, format })
    }

    /// Text at `level`: what is used without any variable set.
    pub fn default_for(level: LevelFilter) -> Self {
        Self {
            filter: Targets::new().with_default(level),
            format: Format::Text,
        }
    }

    /// The configuration from the environment, with `default` when
    /// `ACCORD_LOG_LEVEL` is unset.
    pub fn from_env(default: LevelFilter) -> Result<Self, ConfigError> {
        let level = std::env::var(LEVEL_VAR).ok();
        let format = std::env::var(FORMAT_VAR).ok();
        Self::parse(level.as_deref(), format.as_deref(), default)
    }

    /// The same with every level at least `floor` (for `accord -v`).
    pub fn at_least(mut self, floor: LevelFilter) -> Self {
        let current = self.filter.default_level().unwrap_or(LevelFilter::OFF);
        if floor > current {
            self.filter = self.filter.with_default(floor);
        }
        self
    }

    /// The format events are written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether an event of `level` from `target` is written.
    pub fn enabled(&self, target: &str, level: tracing::Level) -> bool {
        self.filter.would_enable(target, &level)
    }
}

/// Parses `ACCORD_LOG_LEVEL`: only the five level names (any case) and
/// `off`, so that a typo is an error and not a silently different filter.
fn parse_levels(text: &str) -> Option<Targets> {
    for directive in text.split(',') {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) => {
                let valid_target = !target.is_empty()
                    && target
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-');
                if !valid_target {
                    return None;
                }
                level
            }
            None => directive,
        };
        let known = ["error", "warn", "info", "debug", "trace", "off"];
        if !known.iter().any(|k| k.eq_ignore_ascii_case(level.trim())) {
            return None;
        }
    }
    Targets::from_str(text).ok()
}

/// The layer that writes events in `format` to `writer`: what [`install`]
/// uses with stderr, and what a test uses to capture the output.
pub fn layer<S, W>(format: Format, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        Format::Text => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .with_target(true)
            .boxed(),
        Format::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer)
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    }
}

/// Installs `config` as the process's subscriber, writing to stderr. A
/// second call (tests that start several programs in one process) keeps
/// the first subscriber.
pub fn install(config: Config) {
    let Config { filter, format } = config;
    let result = tracing_subscriber::registry()
        .with(layer(format, std::io::stderr).with_filter(filter))
        .try_init();
    // Already installed: the first program's configuration stays.
    drop(result);
}

/// Reads the configuration from the environment (with `default` when no
/// level is set) and installs it; a bad variable is returned, for the
/// program to print and exit non-zero.
pub fn init(default: LevelFilter) -> Result<(), ConfigError> {
    install(Config::from_env(default)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn unset_uses_the_default_level_and_text() {
        let config = Config::parse(None, None, LevelFilter::INFO).unwrap();
        assert_eq!(config.format(), Format::Text);
        assert!(config.enabled("accord_guest::coordinator", Level::INFO));
        assert!(!config.enabled("accord_guest::coordinator", Level::DEBUG));
    }

    #[test]
    fn levels_and_per_module_directives() {
        let config = Config::parse(
            Some("warn,accord_guest::coordinator=debug"),
            Some("json"),
            LevelFilter::INFO,
        )
        .unwrap();
        assert_eq!(config.format(), Format::Json);
        assert!(config.enabled("accord_guest::coordinator::server", Level::DEBUG));
        assert!(!config.enabled("accord_guest::coordinator", Level::TRACE));
        assert!(!config.enabled("accord_guest::initializer", Level::INFO));
        assert!(config.enabled("accord_guest::initializer", Level::WARN));
        for level in ["error", "WARN", "Info", "debug", "trace"] {
            assert!(
                Config::parse(Some(level), None, LevelFilter::INFO).is_ok(),
                "{level}"
            );
        }
    }

    #[test]
    fn bad_values_name_the_variable_and_what_it_accepts() {
        for bad in [
            "verbose",
            "info,",
            "=debug",
            "accord guest=info",
            "warn,x=loud",
        ] {
            let err = Config::parse(Some(bad), None, LevelFilter::INFO).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("ACCORD_LOG_LEVEL="), "{text}");
            assert!(text.contains("error, warn, info, debug or trace"), "{text}");
        }
        let err = Config::parse(None, Some("yaml"), LevelFilter::INFO).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ACCORD_LOG_FORMAT=\"yaml\" is not valid: expected text or json"
        );
    }

    #[test]
    fn at_least_raises_but_never_lowers() {
        let quiet = Config::parse(None, None, LevelFilter::WARN).unwrap();
        assert!(
            quiet
                .clone()
                .at_least(LevelFilter::DEBUG)
                .enabled("accord_cli", Level::DEBUG)
        );
        let loud = Config::parse(Some("trace"), None, LevelFilter::WARN).unwrap();
        assert!(
            loud.at_least(LevelFilter::DEBUG)
                .enabled("accord_cli", Level::TRACE)
        );
    }
}
