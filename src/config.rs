//! Configuration: load, merge, environment overlay, validation, defaults and redaction.
//!
//! Promises:
//! - Several `--config` files merge left to right (later keys win), then `TAP_MYSQL_<KEY>`
//!   environment variables override them, for every key the schema knows.
//! - Values may be typed JSON or strings (`"3306"`, `"true"`), as Meltano and pipelinewise users
//!   write them; anything unusable is one `Error::Usage` naming the key (exit code 2).
//! - Unknown keys are a warning, never a failure.
//! - Secrets (password, private key) never appear in `Debug` output or error messages.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The JSON Schema of the config, also served by `--about`.
pub const CONFIG_SCHEMA: &str = include_str!("../schemas/config.schema.json");

/// Default `chunk_rows` (see the README's benchmark for why).
pub(crate) const DEFAULT_CHUNK_ROWS: u64 = 1_000_000;

/// Prefix of environment variables that override config keys.
pub(crate) const ENV_PREFIX: &str = "TAP_MYSQL_";

/// A string that must never be printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub(crate) fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for handing to the driver only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Server flavor, when forced by config or detected from the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Oracle MySQL (and Percona Server).
    Mysql,
    /// MariaDB.
    Mariadb,
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::Mysql => "MySQL",
            Flavor::Mariadb => "MariaDB",
        })
    }
}

/// PEM material given either inline or as a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PemSource {
    /// A file on disk.
    Path(PathBuf),
    /// PEM text (secret when it is a key).
    Inline(Secret),
}

impl PemSource {
    fn parse(value: String) -> Self {
        if value.contains("-----BEGIN") {
            PemSource::Inline(Secret::new(value))
        } else {
            PemSource::Path(PathBuf::from(value))
        }
    }
}

/// How column types map to Singer types (the README's "Type mapping").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeOptions {
    /// `tinyint(1)` as boolean.
    pub tinyint1_as_boolean: bool,
    /// DECIMAL as `string` + `x-singer.decimal`.
    pub decimal_as_string: bool,
    /// JSON columns as strings.
    pub json_as_string: bool,
}

impl Default for TypeOptions {
    fn default() -> Self {
        TypeOptions {
            tinyint1_as_boolean: true,
            decimal_as_string: false,
            json_as_string: false,
        }
    }
}

/// TLS settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// TLS required.
    pub enabled: bool,
    /// CA to trust.
    pub ca: Option<PemSource>,
    /// Client certificate.
    pub cert: Option<PemSource>,
    /// Client key.
    pub key: Option<PemSource>,
    /// Verify server certificate and host name.
    pub verify: bool,
}

/// How the SSH server's host key is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// Against known_hosts lines: the user's `~/.ssh/known_hosts` (None), or the
    /// `known_hosts` setting (a file or inline text).
    KnownHosts(Option<KnownHostsSource>),
    /// Against a pinned `SHA256:...` fingerprint.
    Fingerprint(String),
    /// Not checked (`host_key_check: false`).
    Off,
}

/// The `known_hosts` setting: a file, or the lines themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KnownHostsSource {
    /// A file in known_hosts format.
    Path(PathBuf),
    /// known_hosts lines given inline.
    Inline(String),
}

/// `ssh_tunnel`: connect through one SSH session (MeltanoLabs tap-mysql shape).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTunnelConfig {
    /// SSH server host.
    pub host: String,
    /// SSH server port.
    pub port: u16,
    /// SSH login.
    pub username: String,
    /// The user's private key (a path or inline, secret).
    pub private_key: PemSource,
    /// Its passphrase.
    pub private_key_password: Option<Secret>,
    /// Host key policy.
    pub host_key: HostKeyCheck,
}

/// The keys `ssh_tunnel` knows.
const SSH_KEYS: [&str; 9] = [
    "enable",
    "host",
    "port",
    "username",
    "private_key",
    "private_key_password",
    "host_key_check",
    "known_hosts",
    "host_key_fingerprint",
];

impl SshTunnelConfig {
    /// Parses `ssh_tunnel` (an object, or its JSON text from an environment variable);
    /// None when absent or not enabled.
    fn parse(v: Option<&Value>) -> Result<Option<SshTunnelConfig>> {
        let parsed;
        let obj = match v {
            None => return Ok(None),
            Some(Value::String(s)) => {
                parsed = serde_json::from_str::<Value>(s)
                    .map_err(|_| Error::usage("config: 'ssh_tunnel' must be a JSON object"))?;
                parsed.as_object()
            }
            Some(v) => v.as_object(),
        }
        .ok_or_else(|| Error::usage("config: 'ssh_tunnel' must be an object"))?;
        // Prefixed keys, so every error names `ssh_tunnel.<key>`.
        let mut map = Map::new();
        for (k, v) in obj {
            if !SSH_KEYS.contains(&k.as_str()) {
                log::warn!("config: ignoring unknown key 'ssh_tunnel.{k}'");
            }
            map.insert(format!("ssh_tunnel.{k}"), v.clone());
        }
        let r = Reader { map: &map };
        if !r.boolean("ssh_tunnel.enable")?.unwrap_or(false) {
            return Ok(None);
        }
        let required = |key: &str, v: Option<String>| {
            v.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                Error::usage(format!(
                    "config: 'ssh_tunnel.{key}' is required when ssh_tunnel.enable is true"
                ))
            })
        };
        let fingerprint = r.string("ssh_tunnel.host_key_fingerprint")?;
        let known_hosts = r.string("ssh_tunnel.known_hosts")?;
        let host_key = match (r.boolean("ssh_tunnel.host_key_check")?, fingerprint) {
            (Some(false), _) => HostKeyCheck::Off,
            (_, Some(f)) => {
                let f = f.trim().to_string();
                if !f.starts_with("SHA256:") || f.len() < 20 {
                    return Err(Error::usage(
                        "config: 'ssh_tunnel.host_key_fingerprint' must be a SHA256 fingerprint as ssh-keygen -lf prints it (SHA256:...)",
                    ));
                }
                HostKeyCheck::Fingerprint(f)
            }
            _ => HostKeyCheck::KnownHosts(known_hosts.map(|k| {
                // A known_hosts line always has spaces (host, key type, key); a path rarely.
                if k.trim().contains(' ') {
                    KnownHostsSource::Inline(k)
                } else {
                    KnownHostsSource::Path(PathBuf::from(k.trim()))
                }
            })),
        };
        Ok(Some(SshTunnelConfig {
            host: required("host", r.string("ssh_tunnel.host")?)?,
            port: r.int("ssh_tunnel.port", 1, 65535)?.unwrap_or(22) as u16,
            username: required("username", r.string("ssh_tunnel.username")?)?,
            private_key: PemSource::parse(required(
                "private_key",
                r.secret_string("ssh_tunnel.private_key")?,
            )?),
            private_key_password: r
                .secret_string("ssh_tunnel.private_key_password")?
                .filter(|p| !p.is_empty())
                .map(Secret::new),
            host_key,
        }))
    }
}

/// File format of BATCH messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchFormat {
    /// JSON lines of bare records.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl BatchFormat {
    /// The name in `encoding.format`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BatchFormat::Jsonl => "jsonl",
            BatchFormat::Parquet => "parquet",
        }
    }
}

/// Compression of BATCH files (outer gzip for JSONL, the internal codec for Parquet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchCompression {
    /// None.
    None,
    /// gzip.
    Gzip,
    /// zstd (Parquet only).
    Zstd,
    /// snappy (Parquet only).
    Snappy,
}

impl BatchCompression {
    /// The name in `encoding.compression`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BatchCompression::None => "none",
            BatchCompression::Gzip => "gzip",
            BatchCompression::Zstd => "zstd",
            BatchCompression::Snappy => "snappy",
        }
    }
}

/// `batch_config`, in the Meltano SDK shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// File format.
    pub format: BatchFormat,
    /// Compression.
    pub compression: BatchCompression,
    /// Directory the files are written to (from `storage.root`, a `file://` URL or a path).
    pub root: PathBuf,
    /// File name prefix.
    pub prefix: String,
    /// Rows per file.
    pub batch_size: u64,
}

impl BatchConfig {
    fn parse(v: &Value) -> Result<BatchConfig> {
        let bad = |m: String| Error::usage(format!("config: batch_config: {m}"));
        let obj = v
            .as_object()
            .ok_or_else(|| bad("must be an object".into()))?;
        let enc = obj.get("encoding").and_then(Value::as_object);
        let format = match enc.and_then(|e| e.get("format")).and_then(Value::as_str) {
            Some("jsonl") => BatchFormat::Jsonl,
            Some("parquet") => BatchFormat::Parquet,
            Some(other) => {
                return Err(bad(format!(
                    "encoding.format must be \"jsonl\" or \"parquet\" (got {other:?})"
                )))
            }
            None => {
                return Err(bad(
                    "encoding.format is required (\"jsonl\" or \"parquet\")".into(),
                ))
            }
        };
        let compression = match (format, enc.and_then(|e| e.get("compression")).and_then(Value::as_str)) {
            (_, None | Some("none")) => BatchCompression::None,
            (_, Some("gzip")) => BatchCompression::Gzip,
            (BatchFormat::Parquet, Some("zstd")) => BatchCompression::Zstd,
            (BatchFormat::Parquet, Some("snappy")) => BatchCompression::Snappy,
            (BatchFormat::Jsonl, Some(other)) => {
                return Err(bad(format!("encoding.compression for jsonl must be \"gzip\" or \"none\" (got {other:?})")))
            }
            (BatchFormat::Parquet, Some(other)) => {
                return Err(bad(format!(
                    "encoding.compression for parquet must be \"zstd\", \"snappy\", \"gzip\" or \"none\" (got {other:?})"
                )))
            }
        };
        let storage = obj.get("storage").and_then(Value::as_object);
        let root = storage
            .and_then(|s| s.get("root"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                bad("storage.root is required (e.g. \"file:///var/tmp/batches\")".into())
            })?;
        let path = match root.strip_prefix("file://") {
            Some(p) => PathBuf::from(p),
            None if root.contains("://") => {
                return Err(bad(format!(
                    "storage.root must be a file:// URL or a local path (got {root:?})"
                )))
            }
            None => PathBuf::from(root),
        };
        let root = if path.is_absolute() {
            path
        } else {
            std::env::current_dir()
                .map_err(|e| bad(format!("cannot resolve the relative storage.root: {e}")))?
                .join(path)
        };
        let prefix = storage
            .and_then(|s| s.get("prefix"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if prefix.contains('/') {
            return Err(bad("storage.prefix must not contain '/'".into()));
        }
        let batch_size = match obj.get("batch_size") {
            None | Some(Value::Null) => 100_000,
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .filter(|n| *n >= 1)
                .ok_or_else(|| bad(format!("batch_size must be a positive integer (got {v})")))?,
        };
        Ok(BatchConfig {
            format,
            compression,
            root,
            prefix,
            batch_size,
        })
    }
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Unix socket path, used instead of host/port when set.
    pub unix_socket: Option<String>,
    /// Login user.
    pub user: String,
    /// Login password.
    pub password: Secret,
    /// Default database.
    pub database: Option<String>,
    /// Databases to discover; empty means all non-system databases.
    pub filter_dbs: Vec<String>,
    /// TLS settings.
    pub tls: TlsConfig,
    /// SSH tunnel, when enabled.
    pub ssh: Option<SshTunnelConfig>,
    /// Extra statements for every session.
    pub session_sqls: Vec<String>,
    /// Replica server id for LOG_BASED.
    pub server_id: Option<u32>,
    /// Use GTIDs for LOG_BASED positions.
    pub use_gtid: bool,
    /// Re-snapshot a LOG_BASED table that can no longer be followed (else fail).
    pub auto_resnapshot: bool,
    /// Forced flavor.
    pub engine: Option<Flavor>,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Retries of a failed connection attempt.
    pub connect_retries: u32,
    /// Type mapping options.
    pub types: TypeOptions,
    /// STATE at least every this many rows.
    pub state_interval_rows: u64,
    /// STATE at least every this many seconds.
    pub state_interval_s: u64,
    /// Worker connections for parallel reads (None: number of cores).
    pub max_parallel_streams: Option<usize>,
    /// Tables with more rows than this are read in key-range chunks (0: never).
    pub chunk_rows: u64,
    /// Forced snapshot method (None: automatic order).
    pub snapshot_method: Option<SnapshotMethod>,
    /// Seconds the snapshot lock may be waited for.
    pub snapshot_lock_timeout_s: u64,
    /// BATCH messages instead of RECORDs, when set.
    pub batch: Option<BatchConfig>,
    /// Seconds between progress lines.
    pub progress_interval_s: u64,
    /// Log lines as JSON objects.
    pub log_json: bool,
    /// Log level.
    pub log_level: log::LevelFilter,
}

impl Config {
    /// Loads, merges and validates config files, then applies `TAP_MYSQL_*` overrides from `env`.
    pub(crate) fn load<I>(paths: &[PathBuf], env: I) -> Result<Config>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut merged = Map::new();
        for path in paths {
            for (k, v) in read_object(path)? {
                merged.insert(k, v);
            }
        }
        apply_env(&mut merged, env)?;
        Config::from_map(merged)
    }

    /// Validates an already merged key/value map.
    pub fn from_map(map: Map<String, Value>) -> Result<Config> {
        let schema = schema_properties();
        for key in map.keys() {
            if !schema.contains_key(key) {
                log::warn!("config: ignoring unknown key '{key}'");
            }
        }
        let r = Reader { map: &map };
        let port = r.int("port", 1, 65535)?.unwrap_or(3306) as u16;
        let user = r
            .string("user")?
            .ok_or_else(|| Error::usage("config: 'user' is required"))?;
        if user.is_empty() {
            return Err(Error::usage("config: 'user' must not be empty"));
        }
        let tls = TlsConfig {
            enabled: r.boolean("ssl")?.unwrap_or(false),
            ca: r.string("ssl_ca")?.map(PemSource::parse),
            cert: r.string("ssl_cert")?.map(PemSource::parse),
            key: r.secret_string("ssl_key")?.map(PemSource::parse),
            verify: r.boolean("ssl_verify")?.unwrap_or(true),
        };
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(Error::usage(
                "config: 'ssl_cert' and 'ssl_key' must be given together",
            ));
        }
        let ssh = SshTunnelConfig::parse(r.get("ssh_tunnel"))?;
        if ssh.is_some() && r.string("unix_socket")?.is_some() {
            return Err(Error::usage(
                "config: 'unix_socket' cannot be used with ssh_tunnel (the tunnel reaches host:port)",
            ));
        }
        let engine = match r.string("engine")?.as_deref() {
            None => None,
            Some("mysql") => Some(Flavor::Mysql),
            Some("mariadb") => Some(Flavor::Mariadb),
            Some(other) => {
                return Err(Error::usage(format!(
                    "config: 'engine' must be \"mysql\" or \"mariadb\" (got {other:?})"
                )))
            }
        };
        let log_level = match r.string("log_level")?.as_deref() {
            None | Some("info") => log::LevelFilter::Info,
            Some("debug") => log::LevelFilter::Debug,
            Some("warning") | Some("warn") => log::LevelFilter::Warn,
            Some("error") => log::LevelFilter::Error,
            Some(other) => {
                return Err(Error::usage(format!(
                    "config: 'log_level' must be one of debug, info, warning, error (got {other:?})"
                )))
            }
        };
        Ok(Config {
            host: r.string("host")?.unwrap_or_else(|| "localhost".into()),
            port,
            unix_socket: r.string("unix_socket")?,
            user,
            password: Secret::new(r.secret_string("password")?.unwrap_or_default()),
            database: r.string("database")?.filter(|d| !d.is_empty()),
            filter_dbs: r.list("filter_dbs")?,
            tls,
            ssh,
            session_sqls: r.string_array("session_sqls")?,
            server_id: r.int("server_id", 1, u32::MAX as i64)?.map(|v| v as u32),
            use_gtid: r.boolean("use_gtid")?.unwrap_or(false),
            auto_resnapshot: r.boolean("auto_resnapshot")?.unwrap_or(true),
            engine,
            connect_timeout: Duration::from_secs(
                r.int("connect_timeout_s", 1, 3600)?.unwrap_or(30) as u64,
            ),
            connect_retries: r.int("connect_retries", 0, 100)?.unwrap_or(3) as u32,
            types: TypeOptions {
                tinyint1_as_boolean: r.boolean("tinyint1_as_boolean")?.unwrap_or(true),
                decimal_as_string: r.boolean("decimal_as_string")?.unwrap_or(false),
                json_as_string: r.boolean("json_as_string")?.unwrap_or(false),
            },
            state_interval_rows: r
                .int("state_interval_rows", 1, 1_000_000_000)?
                .unwrap_or(100_000) as u64,
            state_interval_s: r.int("state_interval_s", 1, 86_400)?.unwrap_or(30) as u64,
            max_parallel_streams: r.int("max_parallel_streams", 1, 256)?.map(|v| v as usize),
            chunk_rows: r.int("chunk_rows", 0, i64::MAX)?.unwrap_or(DEFAULT_CHUNK_ROWS as i64) as u64,
            snapshot_method: match r.string("snapshot_method")? {
                None => None,
                Some(m) => SnapshotMethod::parse(&m).ok_or_else(|| {
                    Error::usage(format!(
                        "config: 'snapshot_method' must be one of auto, global_lock, table_lock, lock_free, lock_tables, independent (got {m:?})"
                    ))
                })?,
            },
            snapshot_lock_timeout_s: r.int("snapshot_lock_timeout_s", 1, 3600)?.unwrap_or(10) as u64,
            batch: match r.get("batch_config") {
                None => None,
                Some(Value::String(s)) => {
                    let v: Value = serde_json::from_str(s)
                        .map_err(|_| Error::usage("config: batch_config must be a JSON object"))?;
                    Some(BatchConfig::parse(&v)?)
                }
                Some(v) => Some(BatchConfig::parse(v)?),
            },
            progress_interval_s: r.int("progress_interval_s", 1, 86_400)?.unwrap_or(15) as u64,
            log_json: match r.string("log_format")?.as_deref() {
                None | Some("text") => false,
                Some("json") => true,
                Some(other) => {
                    return Err(Error::usage(format!(
                        "config: 'log_format' must be \"text\" or \"json\" (got {other:?})"
                    )))
                }
            },
            log_level,
        })
    }

    /// The databases discovery looks at: `filter_dbs`, else `database`, else all.
    pub(crate) fn discovery_databases(&self) -> Vec<String> {
        if !self.filter_dbs.is_empty() {
            self.filter_dbs.clone()
        } else {
            self.database.iter().cloned().collect()
        }
    }

    /// Where we connect, for logs and errors (never credentials).
    pub(crate) fn endpoint(&self) -> String {
        match &self.unix_socket {
            Some(s) => format!("socket {s}"),
            None => match &self.ssh {
                Some(t) => format!(
                    "{}:{} through SSH {}@{}:{}",
                    self.host, self.port, t.username, t.host, t.port
                ),
                None => format!("{}:{}", self.host, self.port),
            },
        }
    }
}

/// The `properties` of the config schema: the keys we know.
pub(crate) fn schema_properties() -> Map<String, Value> {
    // The schema is compiled in and checked by a unit test, so this cannot fail at run time.
    serde_json::from_str::<Value>(CONFIG_SCHEMA)
        .ok()
        .and_then(|v| v.get("properties").and_then(Value::as_object).cloned())
        .unwrap_or_default()
}

fn read_object(path: &Path) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("cannot read config file {}: {}", path.display(), e)))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        Error::usage(format!(
            "config file {} is not valid JSON: {} (line {}, column {})",
            path.display(),
            e.classify_name(),
            e.line(),
            e.column()
        ))
    })?;
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(Error::usage(format!(
            "config file {} must hold a JSON object",
            path.display()
        ))),
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    // serde_json's messages may quote the input; for config (which holds passwords) we print
    // only the kind of error and its position.
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "unexpected end of file",
        }
    }
}

fn apply_env<I>(map: &mut Map<String, Value>, env: I) -> Result<()>
where
    I: IntoIterator<Item = (String, String)>,
{
    let schema = schema_properties();
    for (name, raw) in env {
        let Some(key) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        let Some(spec) = schema.get(&key) else {
            continue;
        };
        let wants_structure = type_names(spec)
            .iter()
            .any(|t| *t == "array" || *t == "object");
        let trimmed = raw.trim_start();
        let value = if wants_structure && (trimmed.starts_with('[') || trimmed.starts_with('{')) {
            serde_json::from_str(&raw).map_err(|_| {
                Error::usage(format!("environment variable {name} is not valid JSON"))
            })?
        } else if wants_structure && type_names(spec) == ["array"] {
            // A plain string for a list-only key: one element.
            Value::Array(vec![Value::String(raw)])
        } else {
            Value::String(raw)
        };
        map.insert(key, value);
    }
    Ok(())
}

fn type_names(spec: &Value) -> Vec<&str> {
    match spec.get("type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// Typed, coercing access to the merged map, with errors naming the key.
struct Reader<'a> {
    map: &'a Map<String, Value>,
}

impl Reader<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(Error::usage(format!(
                "config: '{key}' must be a string (got {})",
                kind(other)
            ))),
        }
    }

    fn secret_string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(Error::usage(format!(
                "config: '{key}' must be a string (got {})",
                kind(other)
            ))),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(Some(false)),
            Some(Value::Number(n)) if n.as_u64() == Some(1) => Ok(Some(true)),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(Some(true)),
                "false" | "0" | "no" | "off" | "" => Ok(Some(false)),
                _ => Err(Error::usage(format!(
                    "config: '{key}' must be true or false (got {s:?})"
                ))),
            },
            Some(other) => Err(Error::usage(format!(
                "config: '{key}' must be true or false (got {})",
                kind(other)
            ))),
        }
    }

    fn int(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>> {
        let bad = |got: String| {
            Error::usage(format!(
                "config: '{key}' must be an integer from {min} to {max} (got {got})"
            ))
        };
        let n = match self.get(key) {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| bad(n.to_string()))?,
            Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| bad(format!("{s:?}")))?,
            Some(other) => return Err(bad(kind(other).to_string())),
        };
        if n < min || n > max {
            return Err(bad(n.to_string()));
        }
        Ok(Some(n))
    }

    /// A comma-separated string or an array of strings.
    fn list(&self, key: &str) -> Result<Vec<String>> {
        let items: Vec<String> = match self.get(key) {
            None => vec![],
            Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
            Some(Value::Array(_)) => self.string_array(key)?,
            Some(other) => {
                return Err(Error::usage(format!(
                "config: '{key}' must be a comma-separated string or an array of strings (got {})",
                kind(other)
            )))
            }
        };
        Ok(items
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect())
    }

    fn string_array(&self, key: &str) -> Result<Vec<String>> {
        match self.get(key) {
            None => Ok(vec![]),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(Error::usage(format!(
                        "config: '{key}' must hold only strings (found {})",
                        kind(other)
                    ))),
                })
                .collect(),
            Some(other) => Err(Error::usage(format!(
                "config: '{key}' must be an array of strings (got {})",
                kind(other)
            ))),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How the snapshot was made consistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotMethod {
    /// `FLUSH TABLES WITH READ LOCK`.
    GlobalLock,
    /// `FLUSH TABLES t... WITH READ LOCK`.
    TableLock,
    /// MariaDB/Percona `binlog_snapshot_*` status, no lock.
    LockFree,
    /// `LOCK TABLES t... READ`.
    LockTables,
    /// Independent per-worker snapshots (not consistent across workers).
    Independent,
    /// One worker: its own snapshot is consistent across tables without any lock.
    Single,
}

impl SnapshotMethod {
    /// Parses the `snapshot_method` config value (`auto` is None).
    pub(crate) fn parse(s: &str) -> Option<Option<SnapshotMethod>> {
        Some(match s {
            "auto" => None,
            "global_lock" => Some(SnapshotMethod::GlobalLock),
            "table_lock" => Some(SnapshotMethod::TableLock),
            "lock_free" => Some(SnapshotMethod::LockFree),
            "lock_tables" => Some(SnapshotMethod::LockTables),
            "independent" => Some(SnapshotMethod::Independent),
            _ => return None,
        })
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            SnapshotMethod::GlobalLock => "FLUSH TABLES WITH READ LOCK",
            SnapshotMethod::TableLock => "FLUSH TABLES <tables> WITH READ LOCK",
            SnapshotMethod::LockFree => "lock-free (binlog_snapshot_file/position)",
            SnapshotMethod::LockTables => "LOCK TABLES <tables> READ",
            SnapshotMethod::Independent => {
                "independent per-worker snapshots (NOT consistent across tables)"
            }
            SnapshotMethod::Single => "one connection (no lock needed)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from(v: Value) -> Result<Config> {
        match v {
            Value::Object(m) => Config::from_map(m),
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn schema_is_valid_json_with_properties() {
        let v: Value = serde_json::from_str(CONFIG_SCHEMA).unwrap();
        assert!(v["properties"]
            .as_object()
            .unwrap()
            .contains_key("password"));
        assert!(schema_properties().len() > 10);
    }

    #[test]
    fn defaults_and_coercion() {
        let c = from(json!({"user": "u", "port": "3307", "ssl": "true", "filter_dbs": "a, b,,c"}))
            .unwrap();
        assert_eq!(c.port, 3307);
        assert!(c.tls.enabled);
        assert!(c.tls.verify);
        assert_eq!(c.filter_dbs, vec!["a", "b", "c"]);
        assert_eq!(c.host, "localhost");
        assert_eq!(c.connect_retries, 3);
        assert!(c.types.tinyint1_as_boolean);
        let c = from(json!({"user": "u", "filter_dbs": ["x", "y"], "database": "d"})).unwrap();
        assert_eq!(c.discovery_databases(), vec!["x", "y"]);
        let c = from(json!({"user": "u", "database": "d"})).unwrap();
        assert_eq!(c.discovery_databases(), vec!["d"]);
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = from(json!({"user": "u", "port": 70000})).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("'port'"), "{e}");
        let e = from(json!({"user": "u", "ssl": "maybe"})).unwrap_err();
        assert!(e.to_string().contains("'ssl'"), "{e}");
        let e = from(json!({"port": 1})).unwrap_err();
        assert!(e.to_string().contains("'user'"), "{e}");
        let e = from(json!({"user": "u", "engine": "oracle"})).unwrap_err();
        assert!(e.to_string().contains("'engine'"), "{e}");
        let e = from(json!({"user": "u", "ssl_cert": "/x"})).unwrap_err();
        assert!(e.to_string().contains("ssl_key"), "{e}");
    }

    #[test]
    fn batch_config_shapes() {
        let c = from(json!({"user": "u", "batch_config": {
            "encoding": {"format": "parquet", "compression": "zstd"},
            "storage": {"root": "file:///var/tmp/b", "prefix": "orders-"}, "batch_size": 500000}}))
        .unwrap();
        let b = c.batch.unwrap();
        assert_eq!(
            (b.format, b.compression),
            (BatchFormat::Parquet, BatchCompression::Zstd)
        );
        assert_eq!(b.root, PathBuf::from("/var/tmp/b"));
        assert_eq!((b.prefix.as_str(), b.batch_size), ("orders-", 500_000));
        let e = from(json!({"user": "u", "batch_config": {"encoding": {"format": "jsonl", "compression": "zstd"},
            "storage": {"root": "/x"}}})).unwrap_err();
        assert!(
            e.to_string().contains("jsonl must be \"gzip\" or \"none\""),
            "{e}"
        );
        let e = from(json!({"user": "u", "batch_config": {"encoding": {"format": "jsonl"}}}))
            .unwrap_err();
        assert!(e.to_string().contains("storage.root is required"), "{e}");
        assert!(from(json!({"user": "u"})).unwrap().batch.is_none());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = from(json!({"user": "u", "password": "hunter2-secret",
            "ssl_cert": "/c", "ssl_key": "-----BEGIN PRIVATE KEY-----\nabc"}))
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2-secret"), "{dbg}");
        assert!(!dbg.contains("BEGIN PRIVATE"), "{dbg}");
        assert_eq!(c.password.expose(), "hunter2-secret");
    }

    #[test]
    fn ssh_tunnel_settings() {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-bytes\n-----END OPENSSH PRIVATE KEY-----\n";
        let c = from(
            json!({"user": "u", "host": "db", "ssh_tunnel": {"enable": true,
            "host": "bastion", "username": "tunnel", "private_key": key,
            "private_key_password": "pass-phrase-9"}}),
        )
        .unwrap();
        let t = c.ssh.clone().unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.username.as_str()),
            ("bastion", 22, "tunnel")
        );
        assert!(matches!(&t.private_key, PemSource::Inline(k) if k.expose() == key));
        assert_eq!(t.host_key, HostKeyCheck::KnownHosts(None));
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("secret-key-bytes") && !dbg.contains("pass-phrase-9"),
            "{dbg}"
        );
        assert_eq!(c.endpoint(), "db:3306 through SSH tunnel@bastion:22");
        // Not enabled: ignored; an environment variable holds JSON text.
        let c = from(json!({"user": "u", "ssh_tunnel": {"enable": false, "host": "b"}})).unwrap();
        assert!(c.ssh.is_none());
        let c = from(json!({"user": "u", "ssh_tunnel":
            r#"{"enable": "true", "host": "b", "port": "2222", "username": "x",
                "private_key": "/k", "host_key_fingerprint": "SHA256:abcdefghijklmnopqrstuvwxyz"}"#}))
        .unwrap();
        let t = c.ssh.unwrap();
        assert_eq!(t.port, 2222);
        assert_eq!(t.private_key, PemSource::Path(PathBuf::from("/k")));
        assert_eq!(
            t.host_key,
            HostKeyCheck::Fingerprint("SHA256:abcdefghijklmnopqrstuvwxyz".into())
        );
        let base = json!({"enable": true, "host": "b", "username": "x", "private_key": "/k"});
        let with = |k: &str, v: Value| {
            let mut t = base.clone();
            t[k] = v;
            from(json!({"user": "u", "ssh_tunnel": t}))
        };
        let t = with("known_hosts", json!("b ssh-ed25519 AAAA"))
            .unwrap()
            .ssh
            .unwrap();
        assert_eq!(
            t.host_key,
            HostKeyCheck::KnownHosts(Some(KnownHostsSource::Inline("b ssh-ed25519 AAAA".into())))
        );
        let t = with("host_key_check", json!(false)).unwrap().ssh.unwrap();
        assert_eq!(t.host_key, HostKeyCheck::Off);
        for (k, v, needle) in [
            ("host", Value::Null, "'ssh_tunnel.host' is required"),
            (
                "private_key",
                json!(""),
                "'ssh_tunnel.private_key' is required",
            ),
            ("port", json!(0), "'ssh_tunnel.port'"),
            ("host_key_fingerprint", json!("MD5:aa"), "SHA256"),
        ] {
            let e = with(k, v).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(needle), "{e}");
        }
        let e = from(json!({"user": "u", "unix_socket": "/s", "ssh_tunnel": base})).unwrap_err();
        assert!(e.to_string().contains("unix_socket"), "{e}");
    }

    #[test]
    fn env_overrides_files_and_parses_structures() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.json");
        std::fs::write(&a, r#"{"user": "a", "host": "h1", "port": 1}"#).unwrap();
        std::fs::write(&b, r#"{"host": "h2"}"#).unwrap();
        let env = vec![
            ("TAP_MYSQL_PORT".to_string(), "4000".to_string()),
            ("TAP_MYSQL_PASSWORD".to_string(), "pw".to_string()),
            (
                "TAP_MYSQL_SESSION_SQLS".to_string(),
                r#"["SET a=1", "SET b=2"]"#.to_string(),
            ),
            ("TAP_MYSQL_NOT_A_KEY".to_string(), "x".to_string()),
            ("OTHER".to_string(), "y".to_string()),
        ];
        let c = Config::load(&[a, b], env).unwrap();
        assert_eq!(c.user, "a");
        assert_eq!(c.host, "h2");
        assert_eq!(c.port, 4000);
        assert_eq!(c.password.expose(), "pw");
        assert_eq!(c.session_sqls, vec!["SET a=1", "SET b=2"]);
    }

    #[test]
    fn malformed_file_does_not_echo_content() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        std::fs::write(&a, r#"{"user": "a", "password": "s3cr3t" "#).unwrap();
        let e = Config::load(&[a], vec![]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(!e.to_string().contains("s3cr3t"));
        assert!(e.to_string().contains("not valid JSON"), "{e}");
    }
}
