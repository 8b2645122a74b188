//! A private OpenSSH server for the SSH tunnel tests: `sshd` (Debian's `openssh-server`) on
//! 127.0.0.1 on a free port, as the current user, from a temp dir with a throwaway host key and
//! throwaway user keys. A watchdog shell stops it once the test process is gone.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Passphrase of the PEM RSA user key; tests check it never appears in output.
pub const RSA_PASSPHRASE: &str = "rsa-Passphrase-77";

/// A running `sshd` and its keys.
pub struct Sshd {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Its temp dir (keys, config, log).
    pub dir: PathBuf,
    /// The listener's pid (its children serve the connections).
    pub pid: u32,
    /// The user it accepts (the current user).
    pub user: String,
}

impl Sshd {
    /// A file of its temp dir.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// A file of its temp dir, read.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).expect("sshd test file")
    }

    /// The known_hosts line of its host key, as `ssh-keyscan` would print it.
    pub fn known_hosts_line(&self) -> String {
        let public = self.read("host_ed25519.pub");
        let mut fields = public.split_whitespace();
        let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }

    /// Its host key's `SHA256:...` fingerprint.
    pub fn fingerprint(&self, name: &str) -> String {
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f", &self.path(name)])
            .output()
            .expect("ssh-keygen -l");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }

    /// The pids of the processes serving its SSH connections (children of the listener).
    pub fn session_pids(&self) -> Vec<u32> {
        let mut pids = vec![];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if super::proc_stat(pid).map(|s| s.ppid) == Some(self.pid) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Kills (SIGKILL) the processes serving its SSH connections: the tunnel's session drops
    /// as in a network failure. Returns how many were killed.
    pub fn kill_sessions(&self) -> usize {
        let pids = self.session_pids();
        for pid in &pids {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        pids.len()
    }
}

static SHARED: OnceLock<Result<Sshd, String>> = OnceLock::new();

/// The `sshd` the tests share, started on first use.
pub fn sshd() -> &'static Sshd {
    match SHARED.get_or_init(start_sshd) {
        Ok(s) => s,
        Err(e) => panic!("test sshd unavailable: {e}"),
    }
}

/// Starts a new private `sshd` (for a test that kills its sessions).
pub fn start_sshd() -> Result<Sshd, String> {
    let binary = ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("sshd not found: install Debian's openssh-server package")?;
    // sshd refuses to start without its privilege separation directory.
    if !Path::new("/run/sshd").exists() {
        std::fs::create_dir_all("/run/sshd")
            .map_err(|e| format!("sshd needs /run/sshd and it cannot be created: {e}"))?;
    }
    let dir = tempfile::Builder::new()
        .prefix("tap-mysql-sshd-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?
        .keep();
    make_keys(&dir)?;
    let port = free_port()?;
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nAuthorizedKeysFile {d}/authorized_keys\n\
         StrictModes no\nUsePAM no\nPidFile none\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\nAllowTcpForwarding yes\nLogLevel INFO\n",
        d = dir.display()
    );
    std::fs::write(dir.join("sshd_config"), config).map_err(|e| e.to_string())?;
    let pid = spawn_watched(binary, &dir)?;
    wait_listening(port, &dir)?;
    let user = current_user()?;
    Ok(Sshd {
        port,
        dir,
        pid,
        user,
    })
}

/// A host key, the authorized user keys (OpenSSH ed25519; PEM RSA with a passphrase), a
/// stranger's key the server does not know, and another host key (a server impersonator's).
fn make_keys(dir: &Path) -> Result<(), String> {
    let script = format!(
        r#"set -e
ssh-keygen -q -t ed25519 -N '' -C host -f host_ed25519
ssh-keygen -q -t ed25519 -N '' -C other-host -f other_host_ed25519
ssh-keygen -q -t ed25519 -N '' -C user -f user_ed25519
ssh-keygen -q -t rsa -b 2048 -m PEM -N '{RSA_PASSPHRASE}' -C user-rsa -f user_rsa_pem
ssh-keygen -q -t ed25519 -N '' -C stranger -f stranger_ed25519
cat user_ed25519.pub user_rsa_pem.pub > authorized_keys
"#
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("ssh-keygen: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Starts `sshd -D` under a shell that kills it once this test process is gone; returns
/// sshd's pid.
fn spawn_watched(binary: &str, dir: &Path) -> Result<u32, String> {
    let script = r#"
"$1" -D -e -f "$2/sshd_config" 2>>"$2/sshd.log" &
s=$!
echo $s > "$2/sshd.pid"
while kill -0 "$3" 2>/dev/null && kill -0 "$s" 2>/dev/null; do sleep 0.5; done
kill "$s" 2>/dev/null
rm -rf "$2"
"#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sshd-watchdog")
        .arg(binary)
        .arg(dir)
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start sshd: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("sshd.pid")) {
            if let Ok(pid) = text.trim().parse() {
                return Ok(pid);
            }
        }
        if Instant::now() > deadline {
            return Err("sshd did not start (no pid)".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_listening(port: u16, dir: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            // The SSH banner proves it is sshd, not some other listener.
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut banner = [0u8; 4];
            if s.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
    Err(format!("sshd is not listening on port {port}: {log}"))
}

fn current_user() -> Result<String, String> {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .map_err(|e| format!("id -un: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
