//! Chunk planning without a server: the estimator is an exact count over a list of keys.

use serde_json::json;

use super::*;

/// Estimates by counting `keys` in `lo < k <= hi`, counting the probes too.
struct Keys {
    keys: Vec<i128>,
    probes: usize,
}

impl Keys {
    fn new(keys: Vec<i128>) -> Keys {
        Keys { keys, probes: 0 }
    }

    fn rows(&mut self, lo: Option<i128>, hi: i128) -> Result<(u64, usize)> {
        self.probes += 1;
        let n = self
            .keys
            .iter()
            .filter(|&&k| lo.is_none_or(|lo| lo < k) && k <= hi)
            .count();
        Ok((n as u64, self.probes))
    }

    /// Rows of a chunk, by its bounds.
    fn in_chunk(&self, c: &ChunkBounds) -> usize {
        let lo = c.lo.as_ref().map(|v| int_of(v).unwrap());
        let hi = c.hi.as_ref().map(|v| int_of(v).unwrap());
        self.keys
            .iter()
            .filter(|&&k| lo.is_none_or(|lo| lo < k) && hi.is_none_or(|hi| k <= hi))
            .count()
    }
}

fn gaps_of(keys: &mut Keys, wanted: usize, chunk_rows: u64) -> Vec<(Value, u64)> {
    let min = *keys.keys.iter().min().unwrap();
    let max = *keys.keys.iter().max().unwrap();
    int_gaps(min, max, wanted, chunk_rows, &mut |lo, hi| {
        keys.rows(lo, hi)
    })
    .unwrap()
}

fn his(gaps: &[(Value, u64)]) -> Vec<i128> {
    gaps.iter().map(|(v, _)| int_of(v).unwrap()).collect()
}

#[test]
fn small_tables_are_read_whole() {
    assert_eq!(chunk_count(0, 100), None);
    assert_eq!(chunk_count(150, 100), None, "one and a half chunks");
    assert_eq!(chunk_count(151, 100), Some(2));
    assert_eq!(chunk_count(1_000, 100), Some(10));
    assert_eq!(chunk_count(1_099, 100), Some(10));
    assert_eq!(chunk_count(5, 0), Some(5), "chunk_rows 0 counts as 1");
    assert_eq!(
        chunk_count(u64::MAX, u64::MAX),
        Some(2),
        "the threshold saturates instead of overflowing"
    );
}

#[test]
fn integer_bookmarks_widen_and_narrow() {
    assert_eq!(int_of(&json!(-3)), Some(-3));
    assert_eq!(int_of(&json!(u64::MAX)), Some(u64::MAX as i128));
    assert_eq!(int_of(&json!("5")), None);
    assert_eq!(int_of(&json!(1.5)), None);
    assert_eq!(int_value(-1), json!(-1));
    assert_eq!(int_value(i64::MIN as i128), json!(i64::MIN));
    assert_eq!(int_value(u64::MAX as i128), json!(u64::MAX));
    assert_eq!(int_value(u64::MAX as i128 + 1), Value::Null);
    assert_eq!(int_value(i64::MIN as i128 - 1), Value::Null);
}

#[test]
fn even_candidates_end_at_the_max() {
    let c = int_candidates(0, 6400, 2);
    assert_eq!(c.len(), 64, "at least 64 steps");
    assert_eq!(&c[..3], [100, 200, 300]);
    assert_eq!(c.last(), Some(&6400));
    assert_eq!(int_candidates(0, 1_000_000, 10).len(), 160, "16 per chunk");
    assert_eq!(
        int_candidates(0, 1_000_000, 1_000).len(),
        4096,
        "at most 4096"
    );
    assert_eq!(
        int_candidates(0, 10, 2),
        (0..=10).collect::<Vec<_>>(),
        "duplicates removed"
    );
    assert_eq!(int_candidates(7, 7, 2), [7], "one key");
    let c = int_candidates(-(1i128 << 63), u64::MAX as i128, 4);
    assert!(c.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(c.last(), Some(&(u64::MAX as i128)));
}

#[test]
fn a_gap_is_cut_in_two_only_while_it_is_too_full_and_can_be_cut() {
    assert_eq!(split_point(Some(0), 100, 101, 100, 0, 0), Some(50));
    assert_eq!(split_point(Some(-100), -50, 500, 100, 3, 7), Some(-75));
    assert_eq!(split_point(Some(10), 13, 500, 100, 0, 0), Some(11));
    assert_eq!(
        split_point(Some(0), 100, 100, 100, 0, 0),
        None,
        "full, not over"
    );
    assert_eq!(
        split_point(Some(9), 10, 500, 100, 0, 0),
        None,
        "one key wide"
    );
    assert_eq!(split_point(None, 10, 500, 100, 0, 0), None, "open below");
    assert_eq!(split_point(Some(0), 100, 500, 100, 39, 0), Some(50));
    assert_eq!(split_point(Some(0), 100, 500, 100, 40, 0), None, "depth");
    assert_eq!(
        split_point(Some(0), 100, 500, 100, 0, MAX_PROBES),
        None,
        "probe budget"
    );
}

#[test]
fn bisection_balances_sparse_and_skewed_keys() {
    // Dense ids, then a few far away (snowflake-style jumps).
    let mut keys: Vec<i128> = (1..=10_000).collect();
    keys.extend((1..=10).map(|i| i * 1_000_000_000_000));
    let mut k = Keys::new(keys);
    let gaps = gaps_of(&mut k, 10, 1_000);
    let hi = his(&gaps);
    assert!(hi.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
    assert_eq!(hi.last(), Some(&10_000_000_000_000));
    assert!(gaps.iter().all(|(_, rows)| *rows <= 1_000), "none too full");
    assert_eq!(
        gaps.iter().map(|(_, r)| r).sum::<u64>(),
        10_010,
        "a partition"
    );
    assert!(k.probes < 2_000, "{} probes", k.probes);

    let chunks = merge_gaps(gaps, 1_000);
    assert_eq!(chunks.first().unwrap().lo, None);
    assert_eq!(chunks.last().unwrap().hi, None);
    assert!(chunks
        .windows(2)
        .all(|w| w[0].hi.is_some() && w[0].hi == w[1].lo));
    let sizes: Vec<usize> = chunks.iter().map(|c| k.in_chunk(c)).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 10_010, "every key once");
    let (last, full) = sizes.split_last().unwrap();
    assert!(
        full.iter().all(|&n| (1_000..2_000).contains(&n)),
        "{sizes:?}"
    );
    assert!(*last <= 2_000, "{sizes:?}");
    assert!((5..=11).contains(&chunks.len()), "{sizes:?}");
}

#[test]
fn bisection_stops_at_the_depth_and_probe_limits() {
    // Dense keys in a range far too wide to cut down to chunk size in 40 halvings.
    let mut keys: Vec<i128> = (1..=3_000).collect();
    keys.push(1 << 62);
    let mut k = Keys::new(keys);
    let gaps = gaps_of(&mut k, 2, 100);
    assert_eq!(gaps.iter().map(|(_, r)| r).sum::<u64>(), 3_001);
    assert!(gaps.iter().any(|(_, r)| *r > 100), "depth limit reached");
    assert!(his(&gaps).windows(2).all(|w| w[0] < w[1]));

    // Once the probe budget is spent, the even candidates are kept as they are.
    let mut calls = 0;
    let gaps = int_gaps(1, 6_400, 2, 1, &mut |_, _| {
        calls += 1;
        Ok((1_000, MAX_PROBES))
    })
    .unwrap();
    assert_eq!(gaps.len(), 64);
    assert_eq!(calls, 64);

    // Estimator errors stop the planning.
    let failed = int_gaps(1, 100, 2, 1, &mut |_, _| Err(Error::runtime("no EXPLAIN")));
    assert!(matches!(failed, Err(Error::Runtime(m)) if m == "no EXPLAIN"));
}

#[test]
fn bisect_covers_exactly_the_gap_it_is_given() {
    let mut k = Keys::new((1..=100).collect());
    let mut out = Vec::new();
    bisect(Some(20), 60, 10, &mut out, 0, &mut |lo, hi| k.rows(lo, hi)).unwrap();
    assert_eq!(his(&out), [30, 40, 50, 60], "cut while over 10 rows");
    assert!(out.iter().all(|(_, r)| *r == 10));

    let mut out = Vec::new();
    bisect(None, 60, 10, &mut out, 0, &mut |lo, hi| k.rows(lo, hi)).unwrap();
    assert_eq!(out, [(json!(60), 60)], "an open gap is never cut");
}

#[test]
fn empty_gaps_merge_into_their_neighbours() {
    let gaps = |g: &[(i64, u64)]| -> Vec<(Value, u64)> {
        g.iter().map(|&(hi, rows)| (json!(hi), rows)).collect()
    };
    let b = |lo: Option<i64>, hi: Option<i64>| ChunkBounds {
        lo: lo.map(Value::from),
        hi: hi.map(Value::from),
    };
    assert_eq!(
        merge_gaps(
            gaps(&[(1, 0), (2, 0), (3, 500), (4, 600), (5, 0), (6, 10)]),
            1_000
        ),
        [b(None, Some(4)), b(Some(4), None)]
    );
    assert_eq!(
        merge_gaps(gaps(&[(1, 100), (2, 100), (3, 100)]), 100),
        [b(None, Some(1)), b(Some(1), Some(2)), b(Some(2), None)]
    );
    assert_eq!(
        merge_gaps(gaps(&[(1, 0), (2, 0), (3, 0)]), 100),
        [b(None, None)],
        "all empty: one chunk, read whole"
    );
    assert_eq!(
        merge_gaps(gaps(&[(1, 5_000), (2, 0)]), 100),
        [b(None, Some(1)), b(Some(1), None)],
        "the last chunk is open above even when empty"
    );
    assert_eq!(merge_gaps(vec![], 100), []);
}

#[test]
fn estimates_read_the_chunk_predicate_through_the_key_index() {
    let t = "`shop`.`orders`";
    assert_eq!(
        estimate_sql("`id`", t, Some("PRIMARY"), Some("10"), Some("20")),
        "EXPLAIN SELECT `id` FROM `shop`.`orders` FORCE INDEX (`PRIMARY`) WHERE `id` > 10 AND `id` <= 20"
    );
    assert_eq!(
        estimate_sql("`id`", t, None, None, None),
        "EXPLAIN SELECT `id` FROM `shop`.`orders`"
    );
    assert_eq!(
        estimate_sql("`id`", t, None, None, Some("20")),
        "EXPLAIN SELECT `id` FROM `shop`.`orders` WHERE `id` <= 20"
    );
    assert_eq!(
        estimate_sql("`k`", t, Some("u`k"), Some("_utf8mb4 X'61'"), None),
        "EXPLAIN SELECT `k` FROM `shop`.`orders` FORCE INDEX (`u``k`) WHERE `k` > _utf8mb4 X'61'"
    );
}

#[test]
fn text_keys_are_probed_by_printable_prefixes() {
    let one = text_probes(23);
    assert_eq!(one.len(), 95);
    assert_eq!((one[0].as_str(), one[94].as_str()), (" ", "~"));
    let two = text_probes(24);
    assert_eq!(two.len(), 95 * 32);
    assert_eq!(&two[..3], ["  ", " #", " &"]);
    assert_eq!(two.last().map(String::as_str), Some("~}"));
    assert!(two.iter().all(|p| p.len() == 2));
}

#[test]
fn sampled_keys_become_consecutive_gaps_ending_at_the_max() {
    let mut asked: Vec<(Option<Value>, Value)> = Vec::new();
    let gaps = sample_gaps(
        vec![json!("b"), json!("b"), json!("d")],
        &json!("f"),
        &mut |lo, hi| {
            asked.push((lo.cloned(), hi.clone()));
            Ok(asked.len() as u64)
        },
    )
    .unwrap();
    assert_eq!(gaps, [(json!("b"), 1), (json!("d"), 2), (json!("f"), 3)]);
    assert_eq!(
        asked,
        [
            (None, json!("b")),
            (Some(json!("b")), json!("d")),
            (Some(json!("d")), json!("f")),
        ]
    );
    let gaps = sample_gaps(vec![json!("a"), json!("f")], &json!("f"), &mut |_, _| Ok(0)).unwrap();
    assert_eq!(his_text(&gaps), ["a", "f"], "the max is not repeated");
    let gaps = sample_gaps(vec![], &json!("f"), &mut |_, _| Ok(0)).unwrap();
    assert_eq!(his_text(&gaps), ["f"]);
}

fn his_text(gaps: &[(Value, u64)]) -> Vec<&str> {
    gaps.iter().map(|(v, _)| v.as_str().unwrap()).collect()
}
