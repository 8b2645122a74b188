//! known_hosts lines, as OpenSSH writes and reads them: the host key check of the SSH tunnel.
//!
//! Supported: plain and hashed (`|1|salt|hash`) host names, `[host]:port` for other ports than
//! 22, comma lists, `*` and `?` wildcards, `!` negations, and `@revoked` lines. `@cert-authority`
//! lines are skipped (host certificates are checked by their key only).

use std::path::PathBuf;

use base64::Engine;
use russh::keys::{self, PublicKey};

use crate::config::KnownHostsSource;

/// What the known_hosts lines say of a host's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Recorded for this host.
    Known,
    /// The host has no line.
    Unknown,
    /// The host has lines, none with this key.
    Changed,
    /// The key is on a `@revoked` line for this host.
    Revoked,
}

/// The known_hosts text and where it came from (for messages). A missing
/// `~/.ssh/known_hosts` is empty; a configured file that cannot be read is an error.
pub(super) fn read(source: Option<&KnownHostsSource>) -> Result<(String, String), String> {
    match source {
        None => {
            let origin = "~/.ssh/known_hosts".to_string();
            let path =
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh").join("known_hosts"));
            let text = path
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            Ok((text, origin))
        }
        Some(KnownHostsSource::Path(p)) => std::fs::read_to_string(p)
            .map(|t| (t, p.display().to_string()))
            .map_err(|e| {
                format!(
                    "cannot read the ssh_tunnel.known_hosts file {}: {e}",
                    p.display()
                )
            }),
        Some(KnownHostsSource::Inline(t)) => Ok((t.clone(), "ssh_tunnel.known_hosts".into())),
    }
}

/// Looks `key` up for `host`:`port` in known_hosts `text`.
pub(super) fn verdict(text: &str, host: &str, port: u16, key: &PublicKey) -> Verdict {
    let name = if port == 22 {
        host.to_ascii_lowercase()
    } else {
        format!("[{}]:{port}", host.to_ascii_lowercase())
    };
    let (mut seen, mut matched) = (false, false);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        let (marker, hosts) = match first.strip_prefix('@') {
            Some(marker) => (Some(marker), fields.next()),
            None => (None, Some(first)),
        };
        let (Some(hosts), Some(_kind), Some(encoded)) = (hosts, fields.next(), fields.next())
        else {
            continue;
        };
        if !hosts_match(hosts, &name) {
            continue;
        }
        let Ok(recorded) = keys::parse_public_key_base64(encoded) else {
            continue;
        };
        let same = recorded.key_data() == key.key_data();
        match marker {
            Some("revoked") if same => return Verdict::Revoked,
            Some(_) => {}
            None => {
                seen = true;
                matched |= same;
            }
        }
    }
    match (matched, seen) {
        (true, _) => Verdict::Known,
        (false, true) => Verdict::Changed,
        (false, false) => Verdict::Unknown,
    }
}

/// Whether a host field (a hashed name, or a comma list of patterns) names `name`.
fn hosts_match(field: &str, name: &str) -> bool {
    if let Some(hashed) = field.strip_prefix("|1|") {
        return hashed_match(hashed, name);
    }
    let mut any = false;
    for pattern in field.split(',') {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated.as_bytes(), name.as_bytes()) => return false,
            Some(_) => {}
            None => any |= glob(pattern.as_bytes(), name.as_bytes()),
        }
    }
    any
}

/// `salt|hash`, both base64: HMAC-SHA1 of the name under the salt.
fn hashed_match(hashed: &str, name: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    ring::hmac::verify(&key, name.as_bytes(), &hash).is_ok()
}

/// OpenSSH patterns: `*` any run of characters, `?` one character.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAID5RMvwIFkyafex/gbzpqeQhcg2EckFZFAXO2T1w0GH1";
    const OTHER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJgCrfcElshsbBY/mB87OGGwjOB7g5Ph6E+3DhTEAcU7";
    /// `[127.0.0.1]:42222` hashed by `ssh-keygen -H`.
    const HASHED: &str = "|1|/CNVx17oZ5vcFK5u7relfVwk/+k=|Al9dO93hUniXvjsNb1n+AlGYAJ0=";

    fn key(b64: &str) -> PublicKey {
        keys::parse_public_key_base64(b64).unwrap()
    }

    #[test]
    fn plain_hashed_and_ported_names() {
        let k = key(KEY);
        let text = format!("# comment\n\nbastion.example,10.0.0.1 ssh-ed25519 {KEY}\n");
        assert_eq!(verdict(&text, "bastion.example", 22, &k), Verdict::Known);
        assert_eq!(verdict(&text, "BASTION.example", 22, &k), Verdict::Known);
        assert_eq!(verdict(&text, "10.0.0.1", 22, &k), Verdict::Known);
        assert_eq!(
            verdict(&text, "bastion.example", 2222, &k),
            Verdict::Unknown
        );
        assert_eq!(verdict(&text, "other", 22, &k), Verdict::Unknown);
        assert_eq!(
            verdict(&text, "bastion.example", 22, &key(OTHER)),
            Verdict::Changed
        );
        let text = format!("[bastion]:2222 ssh-ed25519 {KEY}\n");
        assert_eq!(verdict(&text, "bastion", 2222, &k), Verdict::Known);
        assert_eq!(verdict(&text, "bastion", 22, &k), Verdict::Unknown);
        let text = format!("{HASHED} ssh-ed25519 {KEY}\n");
        assert_eq!(verdict(&text, "127.0.0.1", 42222, &k), Verdict::Known);
        assert_eq!(verdict(&text, "127.0.0.1", 42223, &k), Verdict::Unknown);
        assert_eq!(
            verdict(&text, "127.0.0.1", 42222, &key(OTHER)),
            Verdict::Changed
        );
    }

    #[test]
    fn patterns_markers_and_garbage() {
        let k = key(KEY);
        let text = format!("*.example,!bad.example ssh-ed25519 {KEY}\n");
        assert_eq!(verdict(&text, "db.example", 22, &k), Verdict::Known);
        assert_eq!(verdict(&text, "bad.example", 22, &k), Verdict::Unknown);
        let text = format!("h? ssh-ed25519 {KEY}\n");
        assert_eq!(verdict(&text, "h1", 22, &k), Verdict::Known);
        assert_eq!(verdict(&text, "h12", 22, &k), Verdict::Unknown);
        let text = format!("h ssh-ed25519 {KEY}\n@revoked h ssh-ed25519 {KEY}\n");
        assert_eq!(verdict(&text, "h", 22, &k), Verdict::Revoked);
        let text = format!("@cert-authority h ssh-ed25519 {KEY}\nh ssh-ed25519 not-base64\njunk\n");
        assert_eq!(verdict(&text, "h", 22, &k), Verdict::Unknown);
        assert!(!hosts_match("|1|x|y", "h") && !hosts_match("|1|nobar", "h"));
    }

    #[test]
    fn sources() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kh");
        std::fs::write(&p, "h ssh-ed25519 AAAA\n").unwrap();
        let (text, origin) = read(Some(&KnownHostsSource::Path(p.clone()))).unwrap();
        assert_eq!(
            (text.as_str(), origin),
            ("h ssh-ed25519 AAAA\n", p.display().to_string())
        );
        let e = read(Some(&KnownHostsSource::Path(dir.path().join("missing")))).unwrap_err();
        assert!(
            e.contains("cannot read the ssh_tunnel.known_hosts file"),
            "{e}"
        );
        let (_, origin) = read(Some(&KnownHostsSource::Inline("x y z".into()))).unwrap();
        assert_eq!(origin, "ssh_tunnel.known_hosts");
    }
}
