//! How server and driver errors are classified.

/// Errors after which a new connection can continue where the old one stopped: the connection
/// dropped, the server restarted or killed it, a network timeout.
pub(crate) fn connection_lost(e: &mysql::Error) -> bool {
    match e {
        mysql::Error::IoError(_) => true,
        mysql::Error::CodecError(mysql_common::proto::codec::error::PacketCodecError::Io(io)) => {
            !io.to_string().contains("certificate")
        }
        mysql::Error::DriverError(d) => !matches!(
            d,
            mysql::DriverError::TlsNotSupported
                | mysql::DriverError::UnknownAuthPlugin(_)
                | mysql::DriverError::CleartextPluginDisabled
                | mysql::DriverError::OldMysqlPasswordDisabled
        ),
        mysql::Error::MySqlError(se) => matches!(
            se.code,
            2006 | 2013 // server gone / lost during query
            | 1053 // server shutdown
            | 1152 // aborted connection
            | 1159 | 1161 // network read/write timeout
            | 1317 // query interrupted (KILL QUERY)
            | 1927 // connection killed (MariaDB)
            | 4031 // disconnected for inactivity (MySQL 8)
        ),
        _ => false,
    }
}
