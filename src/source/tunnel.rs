//! The SSH tunnel (`ssh_tunnel`): one SSH session per run carries every database connection.
//!
//! Promises:
//! - One local listener on `127.0.0.1:0`; each connection accepted there becomes a
//!   `direct-tcpip` channel to the database's host and port through the one SSH session, so
//!   every connection of the run (workers, discovery, the binlog) shares it.
//! - The server's host key is checked before anything is sent to it (known_hosts, or a pinned
//!   fingerprint); an unknown or changed key is refused unless `host_key_check` is false.
//! - A refused host key or a refused user key is a permanent error (one line, never retried);
//!   an unreachable or dropped SSH server is not: the next connection attempt rebuilds the
//!   session, and the readers' reconnect and resume logic does the rest.
//! - Neither key material nor the passphrase reaches a log line or an error message.
//!
//! The SSH client is `russh` (pure Rust, on `ring`), driven by a small tokio current-thread
//! runtime on its own thread ("ssh-tunnel"); the rest of the tap stays blocking.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{self, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use tokio::sync::oneshot;

use super::known_hosts;
use crate::config::{HostKeyCheck, PemSource, SshTunnelConfig};
use crate::error::{Error, Result};

/// Seconds between SSH keepalives; after `KEEPALIVE_MAX` unanswered ones the session is
/// considered dead (and rebuilt by the next connection).
const KEEPALIVE_S: u64 = 15;
const KEEPALIVE_MAX: usize = 4;

/// Why no SSH session could be had.
#[derive(Debug)]
enum Failure {
    /// Host key or user key refused: retrying cannot help.
    Permanent(String),
    /// The server could not be reached or dropped us: a later attempt may work.
    Transient(String),
}

/// A running tunnel: its listener thread and the shared session.
pub(crate) struct Tunnel {
    local_port: u16,
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the listener's tasks and `ensure` share.
struct Shared {
    ssh: SshTunnelConfig,
    key: Arc<PrivateKey>,
    /// The database's host and port, as the SSH server resolves them.
    target: (String, u16),
    timeout: Duration,
    session: tokio::sync::Mutex<Option<Arc<client::Handle<Verifier>>>>,
    /// Sessions opened so far (the first is logged at info, later ones as re-established).
    opened: std::sync::atomic::AtomicUsize,
}

impl Tunnel {
    /// Reads the private key and starts the local listener; the SSH session itself is opened
    /// by the first [`Tunnel::ensure`]. A key that cannot be read or decrypted is a config error.
    pub(crate) fn start(
        ssh: &SshTunnelConfig,
        target_host: &str,
        target_port: u16,
        timeout: Duration,
    ) -> Result<Tunnel> {
        let key = load_key(ssh)?;
        if ssh.host_key == HostKeyCheck::Off {
            log::warn!(
                "ssh_tunnel.host_key_check is false: the SSH server's host key is not verified (a man in the middle would go unnoticed)"
            );
        }
        let io = |what: &str| {
            let what = what.to_string();
            move |e| Error::io(format!("SSH tunnel: cannot {what}"), e)
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io("start its runtime"))?;
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").map_err(io("listen on 127.0.0.1"))?;
        listener
            .set_nonblocking(true)
            .map_err(io("listen on 127.0.0.1"))?;
        let local_port = listener
            .local_addr()
            .map_err(io("listen on 127.0.0.1"))?
            .port();
        let shared = Arc::new(Shared {
            ssh: ssh.clone(),
            key: Arc::new(key),
            target: (target_host.to_string(), target_port),
            timeout,
            session: tokio::sync::Mutex::new(None),
            opened: std::sync::atomic::AtomicUsize::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let handle = runtime.handle().clone();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ssh-tunnel".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = serve(listener, serving) => {}
                        _ = stopped => {}
                    }
                })
            })
            .map_err(io("start its thread"))?;
        Ok(Tunnel {
            local_port,
            shared,
            runtime: handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The local port the database driver connects to.
    pub(crate) fn local_port(&self) -> u16 {
        self.local_port
    }

    /// Makes sure the SSH session is up, opening it (or re-opening a dropped one). A refused
    /// host key or user key is an `Error::Runtime` (never retried); an unreachable server an
    /// `Error::Io` (retried like a failed database connection).
    pub(crate) fn ensure(&self) -> Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = self.shared.clone();
        self.runtime.spawn(async move {
            let _ = tx.send(shared.session().await.map(|_| ()));
        });
        let endpoint = self.shared.endpoint();
        match rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Failure::Permanent(m))) => Err(Error::runtime(format!("SSH tunnel: {m}"))),
            Ok(Err(Failure::Transient(m))) => Err(Error::io(
                format!("SSH tunnel: cannot connect to {endpoint}"),
                std::io::Error::other(m),
            )),
            Err(_) => Err(Error::runtime("SSH tunnel: its thread stopped")),
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts local connections and tunnels each through the session.
async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            log::error!("SSH tunnel: cannot listen on 127.0.0.1: {e}");
            return;
        }
    };
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                log::warn!("SSH tunnel: accepting a local connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(m) = shared.forward(socket, peer.port()).await {
                // The local connection is closed: the driver sees a lost connection and the
                // connect retries (or the reader's reconnect) come back through `ensure`.
                log::warn!("SSH tunnel: {m}");
            }
        });
    }
}

impl Shared {
    fn endpoint(&self) -> String {
        format!("{}@{}:{}", self.ssh.username, self.ssh.host, self.ssh.port)
    }

    /// Pumps one local connection through a new `direct-tcpip` channel until either side ends.
    async fn forward(
        &self,
        mut socket: tokio::net::TcpStream,
        peer_port: u16,
    ) -> Result<(), String> {
        let _ = socket.set_nodelay(true);
        let session = self.session().await.map_err(|f| match f {
            Failure::Permanent(m) | Failure::Transient(m) => m,
        })?;
        let (host, port) = &self.target;
        let channel = session
            .channel_open_direct_tcpip(
                host.clone(),
                u32::from(*port),
                "127.0.0.1",
                u32::from(peer_port),
            )
            .await
            .map_err(|e| {
                format!(
                    "the SSH server {} could not open a connection to {host}:{port}: {e}",
                    self.endpoint()
                )
            })?;
        let mut stream = channel.into_stream();
        // Either side ending (or the session dropping) ends both.
        let _ = tokio::io::copy_bidirectional(&mut socket, &mut stream).await;
        Ok(())
    }

    /// The live session, opened (or re-opened) when there is none.
    async fn session(&self) -> Result<Arc<client::Handle<Verifier>>, Failure> {
        let mut slot = self.session.lock().await;
        if let Some(h) = slot.as_ref() {
            if !h.is_closed() {
                return Ok(h.clone());
            }
            log::warn!(
                "SSH tunnel: the session to {} was lost: reconnecting",
                self.endpoint()
            );
            *slot = None;
        }
        let h = Arc::new(self.open().await?);
        let n = self
            .opened
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (host, port) = &self.target;
        if n == 0 {
            log::info!(
                "SSH tunnel: connected to {}; database connections go to {host}:{port} through it",
                self.endpoint()
            );
        } else {
            log::info!("SSH tunnel: session to {} re-established", self.endpoint());
        }
        *slot = Some(h.clone());
        Ok(h)
    }

    /// Connects, checks the host key, and logs in with the private key.
    async fn open(&self) -> Result<client::Handle<Verifier>, Failure> {
        let rejected = Arc::new(Mutex::new(None));
        let verifier = Verifier {
            check: self.ssh.host_key.clone(),
            host: self.ssh.host.clone(),
            port: self.ssh.port,
            rejected: rejected.clone(),
        };
        let config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(KEEPALIVE_S)),
            keepalive_max: KEEPALIVE_MAX,
            inactivity_timeout: None,
            nodelay: true,
            ..Default::default()
        });
        let addr = (self.ssh.host.clone(), self.ssh.port);
        let connect = client::connect(config, addr, verifier);
        let transient = |m: String| Failure::Transient(m);
        let mut handle = match tokio::time::timeout(self.timeout, connect).await {
            Err(_) => {
                return Err(transient(format!(
                    "timed out after {} s",
                    self.timeout.as_secs()
                )))
            }
            Ok(Err(e)) => {
                let refused = rejected.lock().ok().and_then(|mut r| r.take());
                return Err(match refused {
                    Some(reason) => Failure::Permanent(reason),
                    None => transient(e.to_string()),
                });
            }
            Ok(Ok(h)) => h,
        };
        let login = async {
            let hash = handle.best_supported_rsa_hash().await?.flatten();
            let key = PrivateKeyWithHashAlg::new(self.key.clone(), hash);
            handle
                .authenticate_publickey(self.ssh.username.clone(), key)
                .await
        };
        let auth = match tokio::time::timeout(self.timeout, login).await {
            Err(_) => return Err(transient("login timed out".into())),
            Ok(Err(e)) => return Err(transient(format!("login failed: {e}"))),
            Ok(Ok(auth)) => auth,
        };
        if !auth.success() {
            return Err(Failure::Permanent(format!(
                "the SSH server {}:{} refused the private key for user '{}' (publickey authentication failed): check ssh_tunnel.username and ssh_tunnel.private_key",
                self.ssh.host, self.ssh.port, self.ssh.username
            )));
        }
        Ok(handle)
    }
}

/// Checks the server's host key during the key exchange and records why it was refused.
struct Verifier {
    check: HostKeyCheck,
    host: String,
    port: u16,
    rejected: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match offered {
            keys::PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            keys::PublicKeyOrCertificate::Certificate(c) => PublicKey::from(c.public_key().clone()),
        };
        match check_host_key(&self.check, &self.host, self.port, &key) {
            Ok(()) => Ok(true),
            Err(reason) => {
                if let Ok(mut r) = self.rejected.lock() {
                    *r = Some(reason);
                }
                Ok(false)
            }
        }
    }
}

/// Whether `key` is the host key the policy expects for `host`:`port`; the refusal, worded
/// for the user, otherwise.
fn check_host_key(
    check: &HostKeyCheck,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> Result<(), String> {
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let server = format!("the SSH server {host}:{port}");
    match check {
        HostKeyCheck::Off => Ok(()),
        HostKeyCheck::Fingerprint(pinned) if *pinned == fingerprint => Ok(()),
        HostKeyCheck::Fingerprint(pinned) => Err(format!(
            "{server} presented host key {fingerprint}, not the pinned ssh_tunnel.host_key_fingerprint {pinned}: refusing to connect (a changed host key can mean a man in the middle)"
        )),
        HostKeyCheck::KnownHosts(source) => {
            let (lines, origin) = known_hosts::read(source.as_ref())?;
            match known_hosts::verdict(&lines, host, port, key) {
                known_hosts::Verdict::Known => Ok(()),
                known_hosts::Verdict::Unknown => Err(format!(
                    "{server} is not in {origin} (its host key is {} {fingerprint}): refusing to connect; after checking that fingerprint, add the key to {origin} (ssh-keyscan -p {port} {host}), or set ssh_tunnel.host_key_fingerprint to it, or set ssh_tunnel.host_key_check to false",
                    key.algorithm()
                )),
                known_hosts::Verdict::Changed => Err(format!(
                    "{server} presented host key {fingerprint}, which does not match the key recorded for it in {origin}: refusing to connect (a changed host key can mean a man in the middle)"
                )),
                known_hosts::Verdict::Revoked => Err(format!(
                    "{server} presented host key {fingerprint}, which {origin} marks as revoked: refusing to connect"
                )),
            }
        }
    }
}

/// Reads and decrypts the user's private key; no key text ever reaches the error.
fn load_key(ssh: &SshTunnelConfig) -> Result<PrivateKey> {
    let text = match &ssh.private_key {
        PemSource::Path(p) => std::fs::read_to_string(p).map_err(|e| {
            Error::usage(format!(
                "config: cannot read the ssh_tunnel.private_key file {}: {e}",
                p.display()
            ))
        })?,
        PemSource::Inline(secret) => secret.expose().to_string(),
    };
    // Keys pasted from Windows tools end their lines with CRLF.
    let text = text.replace("\r\n", "\n");
    let passphrase = ssh.private_key_password.as_ref().map(|p| p.expose());
    keys::decode_secret_key(&text, passphrase).map_err(|e| {
        Error::usage(match (e, passphrase) {
            (keys::Error::KeyIsEncrypted, None) => {
                "config: ssh_tunnel.private_key is encrypted: set ssh_tunnel.private_key_password"
                    .to_string()
            }
            (_, Some(_)) => {
                "config: ssh_tunnel.private_key cannot be decrypted and read: wrong ssh_tunnel.private_key_password, or not an OpenSSH/PEM private key".to_string()
            }
            (_, None) => {
                "config: ssh_tunnel.private_key is not an OpenSSH or PEM private key (give the key text or a path to it)".to_string()
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_key_policies() {
        let key = keys::parse_public_key_base64(
            "AAAAC3NzaC1lZDI1NTE5AAAAID5RMvwIFkyafex/gbzpqeQhcg2EckFZFAXO2T1w0GH1",
        )
        .unwrap();
        let fp = "SHA256:wFFhvIDezCAOxvFoGR2D1AJ8MHQoDul7mCSKb00THd0";
        assert_eq!(key.fingerprint(HashAlg::Sha256).to_string(), fp);
        assert!(check_host_key(&HostKeyCheck::Off, "h", 22, &key).is_ok());
        let pinned = HostKeyCheck::Fingerprint(fp.into());
        assert!(check_host_key(&pinned, "h", 22, &key).is_ok());
        let other = HostKeyCheck::Fingerprint("SHA256:other".into());
        let e = check_host_key(&other, "h", 2222, &key).unwrap_err();
        assert!(
            e.contains("the SSH server h:2222 presented host key SHA256:wFFh"),
            "{e}"
        );
        let inline = |t: &str| {
            HostKeyCheck::KnownHosts(Some(crate::config::KnownHostsSource::Inline(t.into())))
        };
        let e = check_host_key(&inline("x ssh-ed25519 AAAA"), "h", 22, &key).unwrap_err();
        assert!(e.contains("is not in ssh_tunnel.known_hosts"), "{e}");
        assert!(e.contains("ssh-keyscan -p 22 h"), "{e}");
    }
}
