//! One error type for the whole tap.
//!
//! Every error carries enough context (which stream, which column, which server error) to be
//! printed as a single line on stderr by `main`. Nothing here ever contains a password: messages
//! are built from our own words plus server/driver messages, never from connection strings.

use std::fmt;

/// Convenient alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, and how the process should exit because of it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user gave us something unusable (config, catalog, state, CLI). Exit code 2.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being read or written.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The server or the driver said no.
    #[error("{context}: {}", describe_mysql(.source))]
    Mysql {
        /// What was being done (stream, query, position).
        context: String,
        /// The server's or the driver's error.
        #[source]
        source: mysql::Error,
    },
    /// The run was stopped because another worker failed (its error is the one reported).
    #[error("cancelled")]
    Cancelled,
    /// SIGINT/SIGTERM: stopped cleanly after writing a final STATE.
    #[error("stopped by {}: every complete message was written and the last STATE covers exactly the rows written", crate::interrupt::name(*.0))]
    Interrupted(i32),
    /// Anything else that stops the run, already phrased for the user.
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    /// A usage/config error: the user must change their input.
    pub(crate) fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// A runtime error phrased for the user.
    pub(crate) fn runtime(msg: impl Into<String>) -> Self {
        Error::Runtime(msg.into())
    }

    /// Wraps an io error with what we were doing.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps a driver/server error with what we were doing.
    pub(crate) fn mysql(context: impl Into<String>, source: mysql::Error) -> Self {
        Error::Mysql {
            context: context.into(),
            source,
        }
    }

    /// The process exit code for this error: 2 for bad input, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Interrupted(sig) => 128 + sig,
            _ => 1,
        }
    }
}

/// Extension to attach context to driver results.
pub trait MysqlContext<T> {
    /// Adds what we were doing when the driver failed.
    fn context(self, context: impl fmt::Display) -> Result<T>;
}

impl<T> MysqlContext<T> for std::result::Result<T, mysql::Error> {
    fn context(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::mysql(context.to_string(), e))
    }
}

/// Renders a driver error on one line, without anything secret.
///
/// The driver's own `Display` is mostly fine, but some variants are multi-line or vague; we keep
/// server errors as `ERROR code (state): message` and flatten the rest.
fn describe_mysql(e: &mysql::Error) -> String {
    let text = match e {
        mysql::Error::MySqlError(se) => {
            format!("server error {} ({}): {}", se.code, se.state, se.message)
        }
        mysql::Error::DriverError(mysql::DriverError::TlsNotSupported) => {
            "TLS is required by the config (ssl) but the server does not offer TLS".to_string()
        }
        mysql::Error::IoError(io) => format!("network error: {io}"),
        other => other.to_string(),
    };
    let mut text = text.replace(['\n', '\r'], " ");
    if text.contains("invalid peer certificate") {
        text.push_str(
            " (the server's TLS certificate was not accepted: set ssl_ca to the CA that signed it, connect with the host name it was issued for, or set ssl_verify to false for a self-signed server you trust)",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16, state: &str, message: &str) -> mysql::Error {
        mysql::Error::MySqlError(mysql::MySqlError {
            state: state.into(),
            message: message.into(),
            code,
        })
    }

    fn io(kind: std::io::ErrorKind, text: &str) -> std::io::Error {
        std::io::Error::new(kind, text)
    }

    #[test]
    fn exit_codes() {
        use std::io::ErrorKind::NotFound;
        assert_eq!(Error::usage("x").exit_code(), 2);
        assert_eq!(Error::runtime("x").exit_code(), 1);
        assert_eq!(Error::io("x", io(NotFound, "y")).exit_code(), 1);
        assert_eq!(Error::mysql("x", server(1045, "28000", "y")).exit_code(), 1);
        assert_eq!(Error::Cancelled.exit_code(), 1);
        assert_eq!(
            Error::Interrupted(signal_hook::consts::SIGINT).exit_code(),
            130
        );
        assert_eq!(
            Error::Interrupted(signal_hook::consts::SIGTERM).exit_code(),
            143
        );
    }

    #[test]
    fn messages_render_on_one_line() {
        use std::io::ErrorKind::{ConnectionRefused, InvalidData, NotFound};
        let cases = [
            (Error::usage("bad config"), "bad config".to_string()),
            (
                Error::io("reading state.json", io(NotFound, "no such file")),
                "reading state.json: no such file".to_string(),
            ),
            (
                Error::mysql(
                    "connecting",
                    server(1045, "28000", "Access denied for user 'u'@'h'\n(using password: YES)\r"),
                ),
                "connecting: server error 1045 (28000): Access denied for user 'u'@'h' (using password: YES) "
                    .to_string(),
            ),
            (
                Error::mysql(
                    "connecting",
                    mysql::Error::DriverError(mysql::DriverError::TlsNotSupported),
                ),
                "connecting: TLS is required by the config (ssl) but the server does not offer TLS"
                    .to_string(),
            ),
            (
                Error::mysql("connecting", mysql::Error::IoError(io(ConnectionRefused, "refused"))),
                "connecting: network error: refused".to_string(),
            ),
            (
                Error::mysql(
                    "connecting",
                    mysql::Error::IoError(io(InvalidData, "invalid peer certificate: UnknownIssuer")),
                ),
                "connecting: network error: invalid peer certificate: UnknownIssuer (the server's TLS certificate was not accepted: set ssl_ca to the CA that signed it, connect with the host name it was issued for, or set ssl_verify to false for a self-signed server you trust)".to_string(),
            ),
            (Error::Cancelled, "cancelled".to_string()),
            (
                Error::Interrupted(signal_hook::consts::SIGTERM),
                "stopped by SIGTERM: every complete message was written and the last STATE covers exactly the rows written".to_string(),
            ),
            (
                Error::Interrupted(9),
                "stopped by a signal: every complete message was written and the last STATE covers exactly the rows written".to_string(),
            ),
        ];
        for (e, text) in cases {
            let shown = e.to_string();
            assert_eq!(shown, text);
            assert!(!shown.contains(['\n', '\r']), "{shown:?}");
        }
        let driver = Error::mysql(
            "reading",
            mysql::Error::DriverError(mysql::DriverError::ConnectTimeout),
        )
        .to_string();
        assert!(driver.starts_with("reading: ") && driver.len() > "reading: ".len());
    }

    #[test]
    fn context_wraps_driver_results() {
        let ok: std::result::Result<u8, mysql::Error> = Ok(3);
        assert_eq!(ok.context("unused").unwrap(), 3);
        let failed: std::result::Result<u8, mysql::Error> = Err(server(1146, "42S02", "no table"));
        match failed.context(format_args!("stream '{}'", "a-b")) {
            Err(Error::Mysql { context, source }) => {
                assert_eq!(context, "stream 'a-b'");
                assert!(matches!(source, mysql::Error::MySqlError(e) if e.code == 1146));
            }
            other => panic!("{other:?}"),
        }
    }
}
