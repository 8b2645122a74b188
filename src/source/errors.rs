//! The one place that decides what a server or driver error means for the run: continue on a
//! new connection, stop for good, or stop with a hint the caller words for its context
//! (a missing privilege, a binary log the server no longer has).
//!
//! Callers never match error codes themselves: they ask [`classify`] (or one of the helpers
//! below) and act on the [`Class`].

/// The server error codes the tap acts on, by their MySQL names.
pub(crate) mod code {
    /// Access denied to a database for the user.
    pub(crate) const DBACCESS_DENIED: u16 = 1044;
    /// Access denied: wrong user or password.
    pub(crate) const ACCESS_DENIED: u16 = 1045;
    /// Unknown database.
    pub(crate) const BAD_DB: u16 = 1049;
    /// Server shutdown in progress.
    pub(crate) const SERVER_SHUTDOWN: u16 = 1053;
    /// SQL syntax error.
    pub(crate) const PARSE_ERROR: u16 = 1064;
    /// The client host may not connect.
    pub(crate) const HOST_NOT_PRIVILEGED: u16 = 1130;
    /// Table access denied.
    pub(crate) const TABLEACCESS_DENIED: u16 = 1142;
    /// Column access denied.
    pub(crate) const COLUMNACCESS_DENIED: u16 = 1143;
    /// Table does not exist.
    pub(crate) const NO_SUCH_TABLE: u16 = 1146;
    /// The connection was aborted.
    pub(crate) const ABORTING_CONNECTION: u16 = 1152;
    /// Network read timeout.
    pub(crate) const NET_READ_INTERRUPTED: u16 = 1159;
    /// Network write timeout.
    pub(crate) const NET_WRITE_INTERRUPTED: u16 = 1161;
    /// A missing privilege (e.g. REPLICATION CLIENT, RELOAD).
    pub(crate) const SPECIFIC_ACCESS_DENIED: u16 = 1227;
    /// The client does not support the server's authentication protocol.
    pub(crate) const NOT_SUPPORTED_AUTH_MODE: u16 = 1251;
    /// The binlog dump cannot be served (file purged, GTIDs the server lacks).
    pub(crate) const MASTER_FATAL_READING_BINLOG: u16 = 1236;
    /// The query was interrupted (`KILL QUERY`).
    pub(crate) const QUERY_INTERRUPTED: u16 = 1317;
    /// Access denied over unix socket authentication.
    pub(crate) const ACCESS_DENIED_NO_PASSWORD: u16 = 1698;
    /// The connection was killed (MariaDB).
    pub(crate) const CONNECTION_KILLED: u16 = 1927;
    /// The server requires TLS.
    pub(crate) const SECURE_TRANSPORT_REQUIRED: u16 = 3159;
    /// Disconnected for inactivity (MySQL 8).
    pub(crate) const CLIENT_INTERACTION_TIMEOUT: u16 = 4031;
    /// Client: the server has gone away.
    pub(crate) const CR_SERVER_GONE: u16 = 2006;
    /// Client: lost connection during a query.
    pub(crate) const CR_SERVER_LOST: u16 = 2013;
}

/// What an error means for the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// The connection was lost (network, server restart, KILL, timeout): a new connection can
    /// continue where this one stopped.
    Reconnect,
    /// A privilege is missing: retrying cannot help; the caller names the privilege it needs.
    Denied,
    /// The binary log position or GTID set asked for is not on the server (purged, or another
    /// history): the caller says how to re-snapshot.
    BinlogGone,
    /// Bad credentials, TLS or authentication setup, a missing object, bad SQL: never retried.
    Permanent,
    /// Anything else: a connection attempt may be retried; a read stops with the error.
    Other,
}

/// Classifies a driver error.
pub(crate) fn classify(e: &mysql::Error) -> Class {
    use mysql::{DriverError as D, Error as E};
    match e {
        E::MySqlError(se) => server_class(se.code),
        E::DriverError(
            D::TlsNotSupported
            | D::UnknownAuthPlugin(_)
            | D::CleartextPluginDisabled
            | D::OldMysqlPasswordDisabled,
        ) => Class::Permanent,
        E::DriverError(_) => Class::Reconnect,
        E::TlsError(_) | E::UrlError(_) => Class::Permanent,
        // rustls reports a rejected server certificate through the packet codec ...
        E::CodecError(c) if c.to_string().contains("certificate") => Class::Permanent,
        E::CodecError(mysql_common::proto::codec::error::PacketCodecError::Io(_)) => {
            Class::Reconnect
        }
        // ... or as an InvalidData io error.
        E::IoError(io) if io.kind() == std::io::ErrorKind::InvalidData => Class::Permanent,
        E::IoError(_) => Class::Reconnect,
        _ => Class::Other,
    }
}

/// Classifies a server error code.
pub(crate) fn server_class(c: u16) -> Class {
    use code::*;
    match c {
        CR_SERVER_GONE
        | CR_SERVER_LOST
        | SERVER_SHUTDOWN
        | ABORTING_CONNECTION
        | NET_READ_INTERRUPTED
        | NET_WRITE_INTERRUPTED
        | QUERY_INTERRUPTED
        | CONNECTION_KILLED
        | CLIENT_INTERACTION_TIMEOUT => Class::Reconnect,
        SPECIFIC_ACCESS_DENIED | DBACCESS_DENIED | ACCESS_DENIED => Class::Denied,
        MASTER_FATAL_READING_BINLOG => Class::BinlogGone,
        BAD_DB
        | HOST_NOT_PRIVILEGED
        | NOT_SUPPORTED_AUTH_MODE
        | ACCESS_DENIED_NO_PASSWORD
        | SECURE_TRANSPORT_REQUIRED
        | TABLEACCESS_DENIED
        | COLUMNACCESS_DENIED
        | NO_SUCH_TABLE
        | PARSE_ERROR => Class::Permanent,
        _ => Class::Other,
    }
}

/// Errors after which a new connection can continue where the old one stopped.
pub(crate) fn connection_lost(e: &mysql::Error) -> bool {
    classify(e) == Class::Reconnect
}

/// Errors a connection retry cannot fix.
pub(crate) fn never_retry(e: &mysql::Error) -> bool {
    matches!(
        classify(e),
        Class::Denied | Class::Permanent | Class::BinlogGone
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16) -> mysql::Error {
        mysql::Error::MySqlError(mysql::MySqlError {
            state: "HY000".into(),
            message: "m".into(),
            code,
        })
    }

    #[test]
    fn server_codes_fall_in_their_class() {
        for c in [2006, 2013, 1053, 1152, 1159, 1161, 1317, 1927, 4031] {
            assert_eq!(classify(&server(c)), Class::Reconnect, "{c}");
            assert!(connection_lost(&server(c)) && !never_retry(&server(c)));
        }
        for c in [1044, 1045, 1227] {
            assert_eq!(classify(&server(c)), Class::Denied, "{c}");
            assert!(never_retry(&server(c)) && !connection_lost(&server(c)));
        }
        assert_eq!(classify(&server(1236)), Class::BinlogGone);
        for c in [1049, 1130, 1251, 1698, 3159, 1142, 1143, 1146, 1064] {
            assert_eq!(classify(&server(c)), Class::Permanent, "{c}");
        }
        for c in [1205, 1213, 1040] {
            // lock wait timeout, deadlock, too many connections: neither lost nor permanent
            assert_eq!(classify(&server(c)), Class::Other, "{c}");
            assert!(!connection_lost(&server(c)) && !never_retry(&server(c)));
        }
    }

    #[test]
    fn driver_and_io_errors() {
        use std::io::{Error as IoError, ErrorKind};
        let io = |k| mysql::Error::IoError(IoError::new(k, "x"));
        assert_eq!(classify(&io(ErrorKind::ConnectionReset)), Class::Reconnect);
        assert_eq!(classify(&io(ErrorKind::UnexpectedEof)), Class::Reconnect);
        assert_eq!(classify(&io(ErrorKind::InvalidData)), Class::Permanent);
        let tls = mysql::Error::DriverError(mysql::DriverError::TlsNotSupported);
        assert_eq!(classify(&tls), Class::Permanent);
        let timeout = mysql::Error::DriverError(mysql::DriverError::ConnectTimeout);
        assert_eq!(classify(&timeout), Class::Reconnect);
    }
}
