//! Logging from a function: one line per call on the guest's stderr, which Atoll logs as an
//! `atoll::guest` line with the request id, tenant and function (and `wasmtime serve` prints).
//!
//! ```no_run
//! atoll_sdk::log::info("cache warmed");
//! atoll_sdk::log::warn(format_args!("slow origin: {} ms", 1200));
//! ```

use std::fmt::Display;
use std::io::Write as _;

/// How serious a line is; it starts the line (`INFO ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Details for debugging.
    Debug,
    /// What happened.
    Info,
    /// Something to look at.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// Writes `message` at `level`, as one line (newlines inside become spaces).
pub fn log(level: Level, message: impl Display) {
    let line = message.to_string().replace('\n', " ");
    let _ = writeln!(std::io::stderr(), "{} {line}", level.as_str());
}

/// [`log`] at [`Level::Debug`].
pub fn debug(message: impl Display) {
    log(Level::Debug, message);
}

/// [`log`] at [`Level::Info`].
pub fn info(message: impl Display) {
    log(Level::Info, message);
}

/// [`log`] at [`Level::Warn`].
pub fn warn(message: impl Display) {
    log(Level::Warn, message);
}

/// [`log`] at [`Level::Error`].
pub fn error(message: impl Display) {
    log(Level::Error, message);
}
