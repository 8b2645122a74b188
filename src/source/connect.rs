//! The connection factory every part of the tap uses.
//!
//! Promises:
//! - Every connection has the same session: `time_zone='+00:00'`, `NAMES utf8mb4`, generous
//!   network timeouts (a slow target must not make the server drop a streaming read), on
//!   MariaDB `use_stat_tables='NEVER'`, then the user's `session_sqls`.
//! - TLS, when configured, is required: a server without TLS is an error, never a silent
//!   downgrade. With `ssl_verify` the certificate chain and host name are checked.
//! - Failed connection attempts are retried with exponential backoff, except errors that
//!   cannot heal (access denied, unknown database, TLS refused or invalid).
//! - The server flavor and version are detected once and logged once, with the TLS cipher.
//! - With `ssh_tunnel`, every connection goes through the one SSH session of the run
//!   (`super::tunnel`): the driver connects to the tunnel's local port, and each attempt first
//!   makes sure the session is up (rebuilding a dropped one). A refused host key or user key
//!   is never retried; an unreachable SSH server is, like a database.
//! - Neither the password nor key material ever reaches a log line or an error message.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder, SslOpts};

use crate::config::{Config, Flavor, PemSource};
use crate::error::{Error, MysqlContext, Result};

/// Seconds the server waits on a stalled client before dropping a query (net_write_timeout)
/// and on an idle session (wait_timeout). Large so back-pressure from a slow target is safe.
const NET_TIMEOUT_S: u32 = 3600;
const WAIT_TIMEOUT_S: u32 = 28_800;

/// What we learned about the server on the first connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerInfo {
    /// MySQL or MariaDB.
    pub flavor: Flavor,
    /// `VERSION()` as the server reports it.
    pub version: String,
    /// Parsed (major, minor, patch).
    pub version_tuple: (u32, u32, u32),
}

impl ServerInfo {
    /// True for MySQL 8.4 and later, where `SHOW MASTER STATUS` became `SHOW BINARY LOG STATUS`.
    pub(crate) fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.version_tuple.0, self.version_tuple.1) >= (major, minor)
    }
}

/// Opens configured connections.
pub(crate) struct Connector {
    opts: Opts,
    session_sqls: Vec<String>,
    retries: u32,
    forced_flavor: Option<Flavor>,
    endpoint: String,
    server: OnceLock<ServerInfo>,
    announced: AtomicBool,
    // Inline PEM material written to private temp files for the driver; removed on drop.
    _pem_files: Vec<tempfile::TempPath>,
    // The SSH tunnel every connection goes through, when configured (dropped last).
    tunnel: Option<super::tunnel::Tunnel>,
}

impl Connector {
    /// Prepares connection options from the config (no network traffic yet).
    pub(crate) fn new(cfg: &Config) -> Result<Connector> {
        let mut pem_files = Vec::new();
        let mut builder = OptsBuilder::new()
            .user(Some(cfg.user.clone()))
            .pass(Some(cfg.password.expose().to_string()))
            .db_name(cfg.database.clone())
            .prefer_socket(false)
            .tcp_connect_timeout(Some(cfg.connect_timeout))
            .tcp_nodelay(true)
            .tcp_keepalive_time_ms(Some(60_000))
            .stmt_cache_size(Some(64))
            // Accept any row the server sends (the driver otherwise caps at the server's
            // max_allowed_packet, which a row of several large columns can exceed).
            .max_allowed_packet(Some(1024 * 1024 * 1024));
        let tunnel = match &cfg.ssh {
            Some(ssh) => Some(super::tunnel::Tunnel::start(
                ssh,
                &cfg.host,
                cfg.port,
                cfg.connect_timeout,
            )?),
            None => None,
        };
        builder = match (&cfg.unix_socket, &tunnel) {
            (Some(path), _) => builder.socket(Some(path.clone())),
            (None, Some(t)) => builder
                .ip_or_hostname(Some("127.0.0.1"))
                .tcp_port(t.local_port()),
            (None, None) => builder
                .ip_or_hostname(Some(cfg.host.clone()))
                .tcp_port(cfg.port),
        };
        if cfg.tls.enabled {
            // Through the tunnel the driver only knows 127.0.0.1, so it cannot check the
            // certificate's host name; the chain is still verified.
            let skip_name = !cfg.tls.verify || tunnel.is_some();
            if tunnel.is_some() && cfg.tls.verify {
                log::warn!(
                    "TLS through the SSH tunnel: the certificate chain is verified but not its host name ({}): the driver connects to the tunnel's local port",
                    cfg.host
                );
            }
            let mut ssl = SslOpts::default()
                .with_danger_accept_invalid_certs(!cfg.tls.verify)
                .with_danger_skip_domain_validation(skip_name);
            if let Some(ca) = &cfg.tls.ca {
                let path = pem_path(ca, "ssl_ca", &mut pem_files)?;
                ssl = ssl.with_root_cert_path(Some(path));
            }
            if let (Some(cert), Some(key)) = (&cfg.tls.cert, &cfg.tls.key) {
                let cert = pem_path(cert, "ssl_cert", &mut pem_files)?;
                let key = pem_path(key, "ssl_key", &mut pem_files)?;
                ssl = ssl.with_client_identity(Some(mysql::ClientIdentity::new(cert, key)));
            }
            builder = builder.ssl_opts(Some(ssl));
        } else if cfg.tls.ca.is_some() || cfg.tls.cert.is_some() {
            log::warn!("config: ssl_ca/ssl_cert are set but ssl is false: connecting without TLS");
        }
        Ok(Connector {
            opts: builder.into(),
            session_sqls: cfg.session_sqls.clone(),
            retries: cfg.connect_retries,
            forced_flavor: cfg.engine,
            endpoint: cfg.endpoint(),
            server: OnceLock::new(),
            announced: AtomicBool::new(false),
            _pem_files: pem_files,
            tunnel,
        })
    }

    /// Opens a connection with retries, sets up the session, and returns it.
    ///
    /// `purpose` names the connection in errors (e.g. "discovery").
    pub(crate) fn connect(&self, purpose: &str) -> Result<Conn> {
        let mut attempt = 0u32;
        loop {
            match self.connect_once(purpose) {
                Ok(conn) => return Ok(conn),
                Err(e) => {
                    let permanent = match &e {
                        Error::Mysql { source, .. } => super::errors::never_retry(source),
                        // An SSH server that could not be reached (the tunnel's refusals of a
                        // host key or user key are runtime errors: never retried).
                        Error::Io { .. } => false,
                        _ => true,
                    };
                    if permanent || attempt >= self.retries {
                        return Err(e);
                    }
                    let delay = backoff(attempt);
                    log::warn!(
                        "{e}; retrying in {:.1} s (attempt {} of {})",
                        delay.as_secs_f64(),
                        attempt + 1,
                        self.retries
                    );
                    std::thread::sleep(delay);
                    attempt += 1;
                }
            }
        }
    }

    /// Connections are plain TCP or a Unix socket (no TLS, no protocol compression), so a
    /// result can be read straight from the socket (`source::wire`).
    pub(crate) fn plain(&self) -> bool {
        self.opts.get_ssl_opts().is_none() && self.opts.get_compress().is_none()
    }

    /// The server's flavor and version (known after the first successful connection).
    pub(crate) fn server(&self) -> Option<&ServerInfo> {
        self.server.get()
    }

    fn connect_once(&self, purpose: &str) -> Result<Conn> {
        let ctx = || format!("cannot connect to {} ({purpose})", self.endpoint);
        if let Some(tunnel) = &self.tunnel {
            tunnel.ensure()?;
        }
        let mut conn = Conn::new(self.opts.clone()).map_err(|e| Error::mysql(ctx(), e))?;
        let setup = [
            "SET time_zone = '+00:00'".to_string(),
            "SET NAMES utf8mb4".to_string(),
            format!(
                "SET SESSION net_read_timeout = {NET_TIMEOUT_S}, net_write_timeout = {NET_TIMEOUT_S}, wait_timeout = {WAIT_TIMEOUT_S}"
            ),
        ];
        for sql in &setup {
            conn.query_drop(sql)
                .context(format!("session setup on {} failed: {sql}", self.endpoint))?;
        }
        if self.server.get().is_none() {
            let info = self.detect(&mut conn)?;
            let _ = self.server.set(info);
        }
        if self
            .server
            .get()
            .is_some_and(|s| s.flavor == Flavor::Mariadb)
        {
            // Engine-independent statistics only steer the optimizer, and the tap's queries
            // are key-ordered scans: not reading them saves opening three mysql.*_stats tables
            // on every first use of a table (half the cost of a query on a small table).
            // Only an optimization: a proxy that refuses it changes nothing else.
            if let Err(e) = conn.query_drop("SET SESSION use_stat_tables = 'NEVER'") {
                log::debug!("session setup: use_stat_tables not set: {e}");
            }
        }
        for sql in &self.session_sqls {
            if let Err(e) = conn.query_drop(sql) {
                log::warn!(
                    "session_sqls: statement failed and was skipped: {sql}: {}",
                    Error::mysql("", e).to_string().trim_start_matches(": ")
                );
            }
        }
        if !self.announced.swap(true, Ordering::SeqCst) {
            self.announce(&mut conn)?;
        }
        Ok(conn)
    }

    fn detect(&self, conn: &mut Conn) -> Result<ServerInfo> {
        let row: Option<(String, Option<String>)> = conn
            .query_first("SELECT VERSION(), @@version_comment")
            .context("cannot read the server version")?;
        let (version, comment) = row.unwrap_or_default();
        let detected = if version.to_ascii_lowercase().contains("mariadb")
            || comment
                .as_deref()
                .is_some_and(|c| c.to_ascii_lowercase().contains("mariadb"))
        {
            Flavor::Mariadb
        } else {
            Flavor::Mysql
        };
        let flavor = match self.forced_flavor {
            Some(f) if f != detected => {
                log::warn!("config: engine is {f} but the server reports {detected} ({version}); using {f}");
                f
            }
            Some(f) => f,
            None => detected,
        };
        Ok(ServerInfo {
            flavor,
            version_tuple: parse_version(&version),
            version,
        })
    }

    fn announce(&self, conn: &mut Conn) -> Result<()> {
        let cipher: Option<(String, String)> = conn
            .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .context("cannot read the TLS status")?;
        let cipher = cipher.map(|(_, v)| v).filter(|v| !v.is_empty());
        if let Some(s) = self.server.get() {
            log::info!(
                "connected to {} {} at {} (TLS: {})",
                s.flavor,
                s.version,
                self.endpoint,
                cipher.as_deref().unwrap_or("off")
            );
        }
        Ok(())
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((1000u64 << attempt.min(5)).min(30_000))
}

/// Parses `10.11.19-MariaDB-0+deb12u1` or `8.0.36` into numbers; missing parts are 0.
pub(crate) fn parse_version(v: &str) -> (u32, u32, u32) {
    let core = v
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap_or("");
    let mut parts = core.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// Inline PEM goes to a private temp file (the driver takes paths); paths must exist.
fn pem_path(
    src: &PemSource,
    key: &str,
    files: &mut Vec<tempfile::TempPath>,
) -> Result<std::path::PathBuf> {
    match src {
        PemSource::Path(p) => {
            if !p.is_file() {
                return Err(Error::usage(format!(
                    "config: '{key}' names a file that does not exist or is not readable: {}",
                    p.display()
                )));
            }
            Ok(p.clone())
        }
        PemSource::Inline(text) => {
            // tempfile creates files readable by the owner only.
            let mut f = tempfile::Builder::new()
                .prefix("tap-mysql-")
                .suffix(".pem")
                .tempfile()
                .map_err(|e| Error::io(format!("cannot write {key} to a temp file"), e))?;
            f.write_all(text.expose().as_bytes())
                .map_err(|e| Error::io(format!("cannot write {key} to a temp file"), e))?;
            let path = f.into_temp_path();
            let p = path.to_path_buf();
            files.push(path);
            Ok(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("10.11.19-MariaDB-0+deb12u1"), (10, 11, 19));
        assert_eq!(parse_version("8.0.36"), (8, 0, 36));
        assert_eq!(parse_version("5.5.5-10.6.1-MariaDB"), (5, 5, 5));
        assert_eq!(parse_version("garbage"), (0, 0, 0));
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(10), Duration::from_secs(30));
    }
}
