//! GTID positions: MySQL GTID sets (several server UUIDs, ranges with gaps, MySQL 8.4 tagged
//! GTIDs) and MariaDB GTID positions (one `domain-server-sequence` per replication domain).
//!
//! Both parse the text the servers print (`gtid_executed`, `gtid_binlog_pos`) and print a
//! canonical form, so a bookmark compares equal to what the server reports for the same point.

use std::collections::BTreeMap;
use std::fmt;

use crate::config::Flavor;

/// A MySQL GTID set: for each (source UUID, tag) the executed transaction numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MysqlGtidSet {
    /// (uuid lower-case, tag lower-case or "") -> sorted, disjoint, non-adjacent [start, end].
    sets: BTreeMap<(String, String), Vec<(u64, u64)>>,
}

impl MysqlGtidSet {
    /// Parses `uuid:1-5:7,uuid2:tag:1-3` (whitespace and newlines allowed, as servers print).
    pub fn parse(text: &str) -> Result<MysqlGtidSet, String> {
        let mut set = MysqlGtidSet::default();
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        for part in compact.split(',').filter(|p| !p.is_empty()) {
            let mut fields = part.split(':');
            let uuid = fields.next().unwrap_or_default().to_ascii_lowercase();
            if !is_uuid(&uuid) {
                return Err(format!("'{part}' does not start with a server UUID"));
            }
            let mut tag = String::new();
            for f in fields {
                if f.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                    let (a, b) = match f.split_once('-') {
                        Some((a, b)) => (a, b),
                        None => (f, f),
                    };
                    let (a, b) = (
                        a.parse::<u64>()
                            .map_err(|_| format!("bad interval '{f}' in '{part}'"))?,
                        b.parse::<u64>()
                            .map_err(|_| format!("bad interval '{f}' in '{part}'"))?,
                    );
                    if a == 0 || b < a {
                        return Err(format!("bad interval '{f}' in '{part}'"));
                    }
                    set.add_range(&uuid, &tag, a, b);
                } else if is_tag(f) {
                    tag = f.to_ascii_lowercase();
                } else {
                    return Err(format!("bad tag or interval '{f}' in '{part}'"));
                }
            }
        }
        Ok(set)
    }

    /// Adds one transaction.
    pub fn add(&mut self, uuid: &str, tag: &str, gno: u64) {
        self.add_range(uuid, tag, gno, gno);
    }

    fn add_range(&mut self, uuid: &str, tag: &str, a: u64, b: u64) {
        let v = self
            .sets
            .entry((uuid.to_ascii_lowercase(), tag.to_ascii_lowercase()))
            .or_default();
        v.push((a, b));
        v.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for &(s, e) in v.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *v = merged;
    }

    /// Whether a transaction is in the set.
    pub(crate) fn contains(&self, uuid: &str, tag: &str, gno: u64) -> bool {
        self.sets
            .get(&(uuid.to_ascii_lowercase(), tag.to_ascii_lowercase()))
            .is_some_and(|v| v.iter().any(|&(s, e)| s <= gno && gno <= e))
    }

    /// Whether every transaction of `other` is in this set.
    pub(crate) fn contains_all(&self, other: &MysqlGtidSet) -> bool {
        other.sets.iter().all(|((u, t), v)| {
            v.iter().all(|&(s, e)| {
                self.sets
                    .get(&(u.clone(), t.clone()))
                    .is_some_and(|mine| mine.iter().any(|&(ms, me)| ms <= s && e <= me))
            })
        })
    }

    /// The transactions in both sets.
    pub(crate) fn intersection(&self, other: &MysqlGtidSet) -> MysqlGtidSet {
        let mut out = MysqlGtidSet::default();
        for (key, mine) in &self.sets {
            let Some(theirs) = other.sets.get(key) else {
                continue;
            };
            for &(a, b) in mine {
                for &(c, d) in theirs {
                    let (s, e) = (a.max(c), b.min(d));
                    if s <= e {
                        out.add_range(&key.0, &key.1, s, e);
                    }
                }
            }
        }
        out
    }

    /// The transactions in either set.
    pub(crate) fn union(&self, other: &MysqlGtidSet) -> MysqlGtidSet {
        let mut out = self.clone();
        for ((u, t), v) in &other.sets {
            for &(s, e) in v {
                out.add_range(u, t, s, e);
            }
        }
        out
    }

    /// The (uuid, tag, intervals) entries, in canonical order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &str, &[(u64, u64)])> {
        self.sets
            .iter()
            .map(|((u, t), v)| (u.as_str(), t.as_str(), v.as_slice()))
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

impl fmt::Display for MysqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut last_uuid: Option<&str> = None;
        for ((uuid, tag), ranges) in &self.sets {
            if last_uuid != Some(uuid.as_str()) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(uuid)?;
                last_uuid = Some(uuid);
            }
            first = false;
            if !tag.is_empty() {
                write!(f, ":{tag}")?;
            }
            for (s, e) in ranges {
                if s == e {
                    write!(f, ":{s}")?;
                } else {
                    write!(f, ":{s}-{e}")?;
                }
            }
        }
        Ok(())
    }
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// MySQL 8.4 tags: a letter or underscore, then up to 31 letters, digits or underscores.
fn is_tag(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One MariaDB GTID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MariadbGtid {
    /// Replication domain.
    pub domain: u32,
    /// Originating server id.
    pub server: u32,
    /// Sequence number within the domain.
    pub seq: u64,
}

/// A MariaDB GTID position: the last GTID of each domain (`0-1-100,1-2-7`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MariadbGtidPos {
    domains: BTreeMap<u32, MariadbGtid>,
}

impl MariadbGtidPos {
    /// Parses `domain-server-seq[,…]` (empty text is the empty position).
    pub fn parse(text: &str) -> Result<MariadbGtidPos, String> {
        let mut pos = MariadbGtidPos::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let nums: Vec<&str> = part.split('-').collect();
            let bad = || format!("'{part}' is not a MariaDB GTID (domain-server-sequence)");
            if nums.len() != 3 {
                return Err(bad());
            }
            let gtid = MariadbGtid {
                domain: nums[0].parse().map_err(|_| bad())?,
                server: nums[1].parse().map_err(|_| bad())?,
                seq: nums[2].parse().map_err(|_| bad())?,
            };
            if pos.domains.insert(gtid.domain, gtid).is_some() {
                return Err(format!("domain {} appears twice in '{text}'", gtid.domain));
            }
        }
        Ok(pos)
    }

    /// Records a GTID as the latest of its domain.
    pub(crate) fn update(&mut self, gtid: MariadbGtid) {
        self.domains.insert(gtid.domain, gtid);
    }

    /// The last GTID of a domain.
    pub(crate) fn get(&self, domain: u32) -> Option<MariadbGtid> {
        self.domains.get(&domain).copied()
    }

    /// Whether the position includes a transaction: its domain is there with a sequence number
    /// at least as high (sequence numbers order a domain; the server id does not).
    pub(crate) fn contains(&self, gtid: MariadbGtid) -> bool {
        self.get(gtid.domain).is_some_and(|g| gtid.seq <= g.seq)
    }

    /// Whether the position includes every transaction of `other`.
    pub(crate) fn contains_all(&self, other: &MariadbGtidPos) -> bool {
        other.domains.values().all(|g| self.contains(*g))
    }

    /// The transactions both positions include: the domains both have, each at the lower
    /// sequence number (a domain one of them lacks is read from its start).
    pub(crate) fn common(&self, other: &MariadbGtidPos) -> MariadbGtidPos {
        let domains = self
            .domains
            .iter()
            .filter_map(|(d, mine)| {
                let theirs = other.domains.get(d)?;
                Some((
                    *d,
                    if theirs.seq < mine.seq {
                        *theirs
                    } else {
                        *mine
                    },
                ))
            })
            .collect();
        MariadbGtidPos { domains }
    }

    /// The transactions either position includes: every domain, at the higher sequence number.
    pub(crate) fn union(&self, other: &MariadbGtidPos) -> MariadbGtidPos {
        let mut out = self.clone();
        for g in other.domains.values() {
            if !out.contains(*g) {
                out.update(*g);
            }
        }
        out
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }
}

impl fmt::Display for MariadbGtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.domains.values().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}-{}-{}", g.domain, g.server, g.seq)?;
        }
        Ok(())
    }
}

/// One transaction's GTID, of either flavor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnGtid {
    /// MariaDB `domain-server-seq`.
    Mariadb(MariadbGtid),
    /// MySQL `uuid[:tag]:gno`.
    Mysql {
        /// Source UUID.
        uuid: String,
        /// MySQL 8.4 tag ("" when untagged).
        tag: String,
        /// Transaction number.
        gno: u64,
    },
}

/// A GTID position of either flavor: which transactions a point of the binlog includes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GtidState {
    /// MariaDB: the last GTID of each domain.
    Mariadb(MariadbGtidPos),
    /// MySQL: the executed set.
    Mysql(MysqlGtidSet),
}

impl GtidState {
    /// Parses the text a server (or a bookmark) gives for `flavor`.
    pub fn parse(flavor: Flavor, text: &str) -> Result<GtidState, String> {
        Ok(match flavor {
            Flavor::Mariadb => GtidState::Mariadb(MariadbGtidPos::parse(text)?),
            Flavor::Mysql => GtidState::Mysql(MysqlGtidSet::parse(text)?),
        })
    }

    /// Records a transaction that passed (MariaDB: the latest of its domain).
    pub fn add(&mut self, t: &TxnGtid) {
        match (self, t) {
            (GtidState::Mariadb(p), TxnGtid::Mariadb(g)) => p.update(*g),
            (GtidState::Mysql(s), TxnGtid::Mysql { uuid, tag, gno }) => s.add(uuid, tag, *gno),
            _ => {}
        }
    }

    /// Whether the position includes a transaction.
    pub fn contains(&self, t: &TxnGtid) -> bool {
        match (self, t) {
            (GtidState::Mariadb(p), TxnGtid::Mariadb(g)) => p.contains(*g),
            (GtidState::Mysql(s), TxnGtid::Mysql { uuid, tag, gno }) => s.contains(uuid, tag, *gno),
            _ => false,
        }
    }

    /// Whether the position includes every transaction of `other`.
    pub fn contains_all(&self, other: &GtidState) -> bool {
        match (self, other) {
            (GtidState::Mariadb(a), GtidState::Mariadb(b)) => a.contains_all(b),
            (GtidState::Mysql(a), GtidState::Mysql(b)) => a.contains_all(b),
            _ => false,
        }
    }

    /// The transactions both include: where a read serving both must start.
    pub(crate) fn common(&self, other: &GtidState) -> GtidState {
        match (self, other) {
            (GtidState::Mariadb(a), GtidState::Mariadb(b)) => GtidState::Mariadb(a.common(b)),
            (GtidState::Mysql(a), GtidState::Mysql(b)) => GtidState::Mysql(a.intersection(b)),
            _ => self.clone(),
        }
    }

    /// The transactions either includes.
    pub(crate) fn union(&self, other: &GtidState) -> GtidState {
        match (self, other) {
            (GtidState::Mariadb(a), GtidState::Mariadb(b)) => GtidState::Mariadb(a.union(b)),
            (GtidState::Mysql(a), GtidState::Mysql(b)) => GtidState::Mysql(a.union(b)),
            _ => self.clone(),
        }
    }

    /// True when no transaction is included.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            GtidState::Mariadb(p) => p.is_empty(),
            GtidState::Mysql(s) => s.is_empty(),
        }
    }

    /// The canonical text, or None when empty.
    pub fn text(&self) -> Option<String> {
        (!self.is_empty()).then(|| self.to_string())
    }
}

impl fmt::Display for GtidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidState::Mariadb(p) => p.fmt(f),
            GtidState::Mysql(s) => s.fmt(f),
        }
    }
}

/// Orders binlog file names by their numeric suffix (`binlog.000010` after `binlog.000009`,
/// and `binlog.1000000` after `binlog.999999`), then by name.
pub(crate) fn binlog_file_order(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |s: &str| -> (String, u64) {
        match s.rsplit_once('.') {
            Some((base, n)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => {
                (base.to_string(), n.parse().unwrap_or(u64::MAX))
            }
            _ => (s.to_string(), 0),
        }
    };
    let (ab, an) = split(a);
    let (bb, bn) = split(b);
    ab.cmp(&bb).then(an.cmp(&bn))
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const U2: &str = "4b2f9a1c-0000-11ee-8c99-0242ac120002";

    #[test]
    fn mysql_sets_parse_merge_and_print_canonically() {
        let s = MysqlGtidSet::parse(&format!(
            "{},\n{}:1-5:7-9:6 ,{}:11",
            U2.to_uppercase(),
            U1,
            U1
        ))
        .unwrap();
        assert_eq!(s.to_string(), format!("{U1}:1-9:11"));
        assert!(s.contains(U1, "", 6));
        assert!(!s.contains(U1, "", 10));
        assert!(!s.contains(U2, "", 1));
        let tagged = MysqlGtidSet::parse(&format!("{U1}:1-3:Blue:1-2:5,{U2}:4")).unwrap();
        assert_eq!(tagged.to_string(), format!("{U1}:1-3:blue:1-2:5,{U2}:4"));
        assert!(tagged.contains(U1, "blue", 5));
        assert!(!tagged.contains(U1, "", 5));
        assert!(tagged.contains_all(&MysqlGtidSet::parse(&format!("{U1}:2,{U1}:blue:1")).unwrap()));
        assert!(!tagged.contains_all(&MysqlGtidSet::parse(&format!("{U1}:4")).unwrap()));
        let mut grow = MysqlGtidSet::parse("").unwrap();
        assert!(grow.is_empty());
        grow.add(U1, "", 2);
        grow.add(U1, "", 1);
        grow.add(U1, "", 4);
        assert_eq!(grow.to_string(), format!("{U1}:1-2:4"));
    }

    #[test]
    fn mysql_sets_reject_garbage() {
        for bad in [
            "nope:1",
            &format!("{U1}:0"),
            &format!("{U1}:5-3"),
            &format!("{U1}:x-y"),
            &format!("{U1}:1tag:1"),
        ] {
            assert!(MysqlGtidSet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mariadb_positions() {
        let mut p = MariadbGtidPos::parse("1-2-7, 0-1-100").unwrap();
        assert_eq!(p.to_string(), "0-1-100,1-2-7");
        p.update(MariadbGtid {
            domain: 0,
            server: 3,
            seq: 101,
        });
        assert_eq!(p.to_string(), "0-3-101,1-2-7");
        assert_eq!(
            p.get(1),
            Some(MariadbGtid {
                domain: 1,
                server: 2,
                seq: 7
            })
        );
        assert!(MariadbGtidPos::parse("").unwrap().is_empty());
        assert!(MariadbGtidPos::parse("0-1").is_err());
        assert!(MariadbGtidPos::parse("0-1-2,0-1-3").is_err());
    }

    fn maria(text: &str) -> GtidState {
        GtidState::parse(Flavor::Mariadb, text).unwrap()
    }

    fn my(text: &str) -> GtidState {
        GtidState::parse(Flavor::Mysql, text).unwrap()
    }

    fn txn(domain: u32, server: u32, seq: u64) -> TxnGtid {
        TxnGtid::Mariadb(MariadbGtid {
            domain,
            server,
            seq,
        })
    }

    #[test]
    fn mariadb_positions_as_sets_of_transactions() {
        let a = maria("0-1-10,1-2-5");
        let b = maria("0-2-7,2-1-3");
        // The oldest position serving both: the domains both have, each at the lower sequence
        // number (the server id of the lower one).
        assert_eq!(a.common(&b).to_string(), "0-2-7");
        assert_eq!(b.common(&a).to_string(), "0-2-7");
        assert_eq!(a.union(&b).to_string(), "0-1-10,1-2-5,2-1-3");
        assert!(a.contains(&txn(0, 9, 10)), "the server id does not matter");
        assert!(!a.contains(&txn(0, 1, 11)));
        assert!(!a.contains(&txn(2, 1, 1)), "a domain it lacks");
        assert!(a.contains_all(&maria("0-1-3")));
        assert!(!maria("0-1-3").contains_all(&a));
        assert!(a.contains_all(&maria("")));
        assert!(a.common(&maria("")).is_empty());
        let mut t = maria("0-1-10");
        t.add(&txn(0, 2, 11));
        t.add(&txn(3, 1, 1));
        assert_eq!(t.text().as_deref(), Some("0-2-11,3-1-1"));
        assert_eq!(maria("").text(), None);
    }

    #[test]
    fn mysql_sets_intersect_and_unite() {
        let a = my(&format!("{U1}:1-10:20-30,{U2}:1-5"));
        let b = my(&format!("{U1}:5-25,{U1}:tag:1"));
        assert_eq!(a.common(&b).to_string(), format!("{U1}:5-10:20-25"));
        assert_eq!(a.union(&b).to_string(), format!("{U1}:1-30:tag:1,{U2}:1-5"));
        let gtid = |uuid: &str, gno| TxnGtid::Mysql {
            uuid: uuid.to_string(),
            tag: String::new(),
            gno,
        };
        assert!(a.contains(&gtid(U1, 25)));
        assert!(!a.contains(&gtid(U1, 15)));
        assert!(a.contains_all(&a.common(&b)));
        assert!(!a.contains_all(&b));
        // Mixed flavors never match.
        assert!(!a.contains(&txn(0, 1, 1)));
    }

    #[test]
    fn binlog_files_order_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(binlog_file_order("binlog.000009", "binlog.000010"), Less);
        assert_eq!(binlog_file_order("binlog.999999", "binlog.1000000"), Less);
        assert_eq!(binlog_file_order("binlog.000010", "binlog.000010"), Equal);
    }
}
