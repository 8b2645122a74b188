//! The row decoder's values against the driver's (`mysql_common`'s `BinlogValue` and
//! `text_bytes`), the oracle: random encodings of every fast-path type, each column kind the
//! type can be read as, byte-identical text.

use mysql_common::binlog::value::BinlogValue;
use mysql_common::constants::ColumnType;
use mysql_common::io::ParseBuf;

use super::value::text;
use super::{decimal_size, read_image, size_of, Cell, Image, MapColumn, Size, TableLayout};
use crate::catalog::types::{ColumnKind, IntWidth};
use crate::cdc::values::{text_bytes, ColumnDecoding};

/// A deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn column(ty: ColumnType, meta: &[u8], unsigned: bool) -> MapColumn {
    let mut m = [0u8; 2];
    m[..meta.len()].copy_from_slice(meta);
    MapColumn {
        ty,
        meta: m,
        meta_len: meta.len(),
        unsigned,
        size: size_of(ty, meta),
    }
}

fn dec(kind: ColumnKind) -> ColumnDecoding {
    ColumnDecoding {
        kind,
        charset: None,
        fixed_binary_len: None,
    }
}

/// The driver's text of one value, or None when the driver refuses (or panics on) it.
fn oracle(col: &MapColumn, d: &ColumnDecoding, bytes: &[u8]) -> Option<Result<Vec<u8>, String>> {
    let v = std::panic::catch_unwind(|| {
        ParseBuf(bytes)
            .parse::<BinlogValue<'_>>((col.ty, col.meta(), col.unsigned, false))
            .ok()
    })
    .ok()??;
    Some(text_bytes(d, &v).map(|t| t.unwrap_or_default()))
}

/// Checks `n` random values of `col` (read as each of `kinds`) against the driver.
fn agree(
    rng: &mut Rng,
    col: &MapColumn,
    kinds: &[ColumnDecoding],
    n: usize,
    valid: impl Fn(&[u8]) -> Vec<u8>,
) {
    let Size::Fixed(size) = col.size else {
        panic!("{col:?} is not fixed-size")
    };
    let mut scratch = Vec::new();
    for _ in 0..n {
        let bytes = valid(&rng.bytes(size));
        for d in kinds {
            let want = oracle(col, d, &bytes).expect("the driver decodes it");
            let got = text(col, d, &bytes, false, &mut scratch).map(|t| t.to_vec());
            assert_eq!(
                got,
                want,
                "{:?} {:?} as {:?}: {bytes:02x?}",
                col.ty,
                col.meta(),
                d.kind
            );
        }
    }
}

fn int_kinds() -> Vec<ColumnDecoding> {
    let mut kinds = vec![
        dec(ColumnKind::Boolean),
        dec(ColumnKind::Year),
        dec(ColumnKind::Double),
    ];
    for width in [
        IntWidth::Tiny,
        IntWidth::Small,
        IntWidth::Medium,
        IntWidth::Int,
        IntWidth::Big,
    ] {
        for unsigned in [false, true] {
            kinds.push(dec(ColumnKind::Integer { width, unsigned }));
        }
    }
    kinds
}

#[test]
fn integers_floats_and_enums_match_the_driver() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let kinds = int_kinds();
    for ty in [
        ColumnType::MYSQL_TYPE_TINY,
        ColumnType::MYSQL_TYPE_SHORT,
        ColumnType::MYSQL_TYPE_INT24,
        ColumnType::MYSQL_TYPE_LONG,
        ColumnType::MYSQL_TYPE_LONGLONG,
    ] {
        for unsigned in [false, true] {
            agree(&mut rng, &column(ty, &[], unsigned), &kinds, 300, |b| {
                b.to_vec()
            });
        }
    }
    let floats = [dec(ColumnKind::Float), dec(ColumnKind::Double)];
    for ty in [ColumnType::MYSQL_TYPE_FLOAT, ColumnType::MYSQL_TYPE_DOUBLE] {
        agree(&mut rng, &column(ty, &[4], false), &floats, 500, |b| {
            b.to_vec()
        });
    }
    let labels: Vec<String> = (1..=300).map(|i| format!("l{i}")).collect();
    let enums = [dec(ColumnKind::Enum {
        values: labels.clone(),
    })];
    agree(
        &mut rng,
        &column(ColumnType::MYSQL_TYPE_ENUM, &[0xf7, 1], false),
        &enums,
        200,
        |b| b.to_vec(),
    );
    agree(
        &mut rng,
        &column(ColumnType::MYSQL_TYPE_ENUM, &[0xf7, 2], false),
        &enums,
        200,
        |b| ((u16::from_le_bytes([b[0], b[1]]) % 301).to_le_bytes()).to_vec(),
    );
    let sets = [
        dec(ColumnKind::Set {
            values: labels[..64].to_vec(),
        }),
        dec(ColumnKind::Binary),
    ];
    for n in 1..=8u8 {
        agree(
            &mut rng,
            &column(ColumnType::MYSQL_TYPE_SET, &[0xf8, n], false),
            &sets,
            50,
            |b| b.to_vec(),
        );
    }
    let bits = [dec(ColumnKind::Bit { bits: 64 })];
    agree(
        &mut rng,
        &column(ColumnType::MYSQL_TYPE_BIT, &[3, 7], false),
        &bits,
        50,
        |b| b.to_vec(),
    );
    let years = [
        dec(ColumnKind::Year),
        dec(ColumnKind::Integer {
            width: IntWidth::Small,
            unsigned: false,
        }),
    ];
    agree(
        &mut rng,
        &column(ColumnType::MYSQL_TYPE_YEAR, &[], false),
        &years,
        300,
        |b| b.to_vec(),
    );
    agree(
        &mut rng,
        &column(ColumnType::MYSQL_TYPE_YEAR, &[], false),
        &years,
        1,
        |_| vec![0],
    );
}

/// A valid binary DECIMAL(p, s) with random digits and sign.
fn decimal_bytes(rng: &mut Rng, p: usize, s: usize) -> Vec<u8> {
    const GROUP: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    let mut out = Vec::new();
    let intg = p - s;
    let mut groups: Vec<usize> = Vec::new();
    if !intg.is_multiple_of(9) {
        groups.push(intg % 9);
    }
    groups.extend(std::iter::repeat_n(9, intg / 9 + s / 9));
    if !s.is_multiple_of(9) {
        groups.push(s % 9);
    }
    for digits in groups {
        // Small values too, so that leading zero groups are common.
        let max = 10u64.pow(digits as u32);
        let x = match rng.below(3) {
            0 => 0,
            1 => rng.below(10),
            _ => rng.below(max),
        };
        let n = GROUP[digits];
        out.extend_from_slice(&(x as u32).to_be_bytes()[4 - n..]);
    }
    out[0] |= 0x80;
    if rng.below(2) == 0 {
        out.iter_mut().for_each(|b| *b = !*b);
    }
    out
}

#[test]
fn decimals_match_the_driver() {
    let mut rng = Rng(42);
    let kinds = [
        dec(ColumnKind::Decimal {
            precision: 65,
            scale: 30,
        }),
        dec(ColumnKind::Text { max_chars: None }),
    ];
    let mut scratch = Vec::new();
    for p in 1..=65usize {
        for s in (0..=p.min(30)).step_by(1 + p / 12) {
            let col = column(
                ColumnType::MYSQL_TYPE_NEWDECIMAL,
                &[p as u8, s as u8],
                false,
            );
            assert_eq!(col.size, Size::Fixed(decimal_size(p, s).unwrap()));
            for _ in 0..20 {
                let bytes = decimal_bytes(&mut rng, p, s);
                for d in &kinds {
                    let want = oracle(&col, d, &bytes).expect("valid decimal");
                    let got = text(&col, d, &bytes, false, &mut scratch).map(|t| t.to_vec());
                    assert_eq!(got, want, "DECIMAL({p},{s}) {bytes:02x?}");
                }
            }
        }
    }
    // Spot values, as the server prints them.
    let col = column(ColumnType::MYSQL_TYPE_NEWDECIMAL, &[12, 2], false);
    let d = dec(ColumnKind::Decimal {
        precision: 12,
        scale: 2,
    });
    for (bytes, want) in [
        (vec![0x80, 0, 0, 0, 0, 0x63], "0.99"),
        (vec![0x7f, 0xff, 0xff, 0xff, 0xfe, 0x9c], "-1.99"),
        (vec![0x80, 0, 0, 0x30, 0x39, 0], "12345.00"),
    ] {
        assert_eq!(
            text(&col, &d, &bytes, false, &mut scratch).unwrap(),
            want.as_bytes()
        );
    }
    assert!(text(
        &column(ColumnType::MYSQL_TYPE_NEWDECIMAL, &[2, 5], false),
        &d,
        &[0; 8],
        false,
        &mut scratch
    )
    .is_err());
}

#[test]
fn temporal_values_match_the_driver() {
    let mut rng = Rng(7);
    let mut kinds = vec![
        dec(ColumnKind::Date),
        dec(ColumnKind::Text { max_chars: None }),
    ];
    for fsp in 0..=6 {
        kinds.push(dec(ColumnKind::DateTime { fsp }));
        kinds.push(dec(ColumnKind::Timestamp { fsp }));
        kinds.push(dec(ColumnKind::Time { fsp }));
    }
    agree(
        &mut rng,
        &column(ColumnType::MYSQL_TYPE_NEWDATE, &[], false),
        &kinds,
        300,
        |b| b.to_vec(),
    );
    for fsp in 0..=6u8 {
        let dt = column(ColumnType::MYSQL_TYPE_DATETIME2, &[fsp], false);
        agree(&mut rng, &dt, &kinds, 200, |b| {
            // A valid date and time: the sign bit set, fraction digits within range.
            let mut v = b.to_vec();
            v[0] |= 0x80;
            valid_fraction(&mut v[5..], fsp);
            v
        });
        let ts = column(ColumnType::MYSQL_TYPE_TIMESTAMP2, &[fsp], false);
        agree(&mut rng, &ts, &kinds, 200, |b| {
            let mut v = b.to_vec();
            v[0] &= 0x7f;
            valid_fraction(&mut v[4..], fsp);
            v
        });
        let t = column(ColumnType::MYSQL_TYPE_TIME2, &[fsp], false);
        agree(&mut rng, &t, &kinds, 200, |b| time2_bytes(b, fsp));
    }
}

/// Fraction bytes holding a valid number of microseconds for `fsp` digits.
fn valid_fraction(b: &mut [u8], fsp: u8) {
    let (n, max) = match fsp {
        1 | 2 => (1, 100u32),
        3 | 4 => (2, 10_000),
        5 | 6 => (3, 1_000_000),
        _ => return,
    };
    let x = (b[..n].iter().fold(0u32, |a, &x| (a << 8) | x as u32)) % max;
    b[..n].copy_from_slice(&x.to_be_bytes()[4 - n..]);
}

/// A valid TIME2 encoding from random bytes: a time of at most 838:59:59 and a fraction within
/// range, positive or negative. (The driver computes negative TIME(1)/TIME(2) values with a
/// fraction in unsigned arithmetic, so those are left to `negative_time_with_two_digits`.)
fn time2_bytes(random: &[u8], fsp: u8) -> Vec<u8> {
    let b: Vec<u8> = (0..7)
        .map(|i| random[i % random.len()].rotate_left(i as u32))
        .collect();
    let h = b[0] as i64 % 239;
    let (m, s) = (b[1] as i64 % 60, b[2] as i64 % 60);
    let frac_max: i64 = match fsp {
        1 | 2 => 100,
        3 | 4 => 10_000,
        5 | 6 => 1_000_000,
        _ => 1,
    };
    let frac = (b[3] as i64 * 65_536 + b[4] as i64 * 256 + b[5] as i64) % frac_max;
    let negative = b[6] & 1 == 1 && !(matches!(fsp, 1 | 2) && frac != 0);
    let hms = (h << 12) | (m << 6) | s;
    let micros = frac * (1_000_000 / frac_max);
    let packed = (hms << 24) + micros;
    let packed = if negative { -packed } else { packed };
    let n = super::frac_bytes(fsp);
    match n {
        3 => ((packed + (1 << 47)) as u64).to_be_bytes()[2..].to_vec(),
        0 => (((packed >> 24) + (1 << 23)) as u64).to_be_bytes()[5..].to_vec(),
        _ => {
            // The integer part rounds toward minus infinity, the fraction is what remains.
            let int_part = packed.div_euclid(1 << 24);
            let f = packed.rem_euclid(1 << 24) / (1_000_000 / frac_max);
            let mut v = ((int_part + (1 << 23)) as u64).to_be_bytes()[5..].to_vec();
            v.extend_from_slice(&(f as u32).to_be_bytes()[4 - n..]);
            v
        }
    }
}

/// TIME(2) '-00:00:01.50': the stored fraction is 0x100 - 50, the integer part -2 + 1.
#[test]
fn negative_time_with_two_digits() {
    let col = column(ColumnType::MYSQL_TYPE_TIME2, &[2], false);
    let d = dec(ColumnKind::Time { fsp: 2 });
    let int_part: i64 = -2 + (1 << 23);
    let mut bytes = (int_part as u64).to_be_bytes()[5..].to_vec();
    bytes.push(0x100u32.wrapping_sub(50) as u8);
    assert_eq!(
        text(&col, &d, &bytes, false, &mut Vec::new()).unwrap(),
        b"-00:00:01.50"
    );
}

#[test]
fn strings_match_the_driver() {
    let mut rng = Rng(99);
    let mut latin1 = dec(ColumnKind::Text { max_chars: None });
    latin1.charset = Some("latin1".into());
    let mut padded = dec(ColumnKind::Binary);
    padded.fixed_binary_len = Some(40);
    let kinds = [
        dec(ColumnKind::Text { max_chars: None }),
        latin1,
        dec(ColumnKind::Binary),
        padded,
        dec(ColumnKind::Json),
    ];
    let mut scratch = Vec::new();
    for (ty, meta, prefix) in [
        (ColumnType::MYSQL_TYPE_VARCHAR, vec![200, 0], 1),
        (ColumnType::MYSQL_TYPE_VARCHAR, vec![0, 4], 2),
        (ColumnType::MYSQL_TYPE_STRING, vec![0xfe, 40], 1),
        (ColumnType::MYSQL_TYPE_STRING, vec![0xee, 0x20], 2),
        (ColumnType::MYSQL_TYPE_BLOB, vec![1], 1),
        (ColumnType::MYSQL_TYPE_BLOB, vec![2], 2),
        (ColumnType::MYSQL_TYPE_BLOB, vec![3], 3),
        (ColumnType::MYSQL_TYPE_BLOB, vec![4], 4),
    ] {
        let col = column(ty, &meta, false);
        assert_eq!(col.size, Size::Prefixed(prefix), "{ty:?} {meta:?}");
        for _ in 0..50 {
            let len = rng.below(60) as usize;
            let mut bytes = (len as u32).to_le_bytes()[..prefix].to_vec();
            bytes.extend(rng.bytes(len).iter().map(|b| b % 128));
            for d in &kinds {
                let want = oracle(&col, d, &bytes).expect("a string");
                let got = text(&col, d, &bytes, false, &mut scratch).map(|t| t.to_vec());
                assert_eq!(got, want, "{ty:?} as {:?}", d.kind);
            }
        }
    }
}

/// A table layout of the given columns (no table map needed).
fn layout(columns: Vec<MapColumn>) -> TableLayout {
    let json_columns = columns
        .iter()
        .filter(|c| c.ty == ColumnType::MYSQL_TYPE_JSON)
        .count();
    TableLayout {
        columns,
        json_columns,
    }
}

#[test]
fn images_locate_nulls_absent_columns_and_values() {
    let l = layout(vec![
        column(ColumnType::MYSQL_TYPE_LONG, &[], false),
        column(ColumnType::MYSQL_TYPE_VARCHAR, &[10, 0], false),
        column(ColumnType::MYSQL_TYPE_SHORT, &[], false),
        column(ColumnType::MYSQL_TYPE_TINY, &[], false),
    ]);
    // Columns 0, 1 and 3 in the image; column 1 NULL.
    let data = [0b010, 7, 0, 0, 0, 0xff, 0b010, 1, 0, 0, 0, 2, b'h', b'i', 9];
    let present = [true, true, false, true];
    let mut img = Image::default();
    let mut pos = 0;
    read_image(&l, &data, &mut pos, &present, false, &mut img).unwrap();
    assert_eq!(
        img.cells,
        vec![
            Cell::Value {
                start: 1,
                end: 5,
                partial: false
            },
            Cell::Null,
            Cell::Absent,
            Cell::Value {
                start: 5,
                end: 6,
                partial: false
            },
        ]
    );
    // The second image starts where the first ended.
    let all = [true; 4];
    let data2 = &data[6..9];
    let mut pos2 = 0;
    assert!(
        read_image(&l, data2, &mut pos2, &all, false, &mut img).is_err(),
        "a value runs past the end"
    );
    let fits = [0b000u8, 1, 0, 0, 0, 2, b'h', b'i', 3, 0, 9];
    let mut pos3 = 0;
    read_image(&l, &fits, &mut pos3, &all, false, &mut img).unwrap();
    assert_eq!(pos3, fits.len());
    assert_eq!(img.bytes(&fits, 1), Some(&b"\x02hi"[..]));
}

/// Random and truncated bytes under random layouts: an error or an image, never a panic, and
/// never a cell outside the data.
#[test]
fn random_and_truncated_images_never_panic() {
    let mut rng = Rng(2024);
    let types = [
        (ColumnType::MYSQL_TYPE_LONG, vec![]),
        (ColumnType::MYSQL_TYPE_VARCHAR, vec![255, 1]),
        (ColumnType::MYSQL_TYPE_BLOB, vec![2]),
        (ColumnType::MYSQL_TYPE_NEWDECIMAL, vec![12, 2]),
        (ColumnType::MYSQL_TYPE_NEWDECIMAL, vec![2, 12]),
        (ColumnType::MYSQL_TYPE_DATETIME2, vec![6]),
        (ColumnType::MYSQL_TYPE_TIME2, vec![3]),
        (ColumnType::MYSQL_TYPE_TIMESTAMP2, vec![2]),
        (ColumnType::MYSQL_TYPE_JSON, vec![4]),
        (ColumnType::MYSQL_TYPE_ENUM, vec![0xf7, 3]),
        (ColumnType::MYSQL_TYPE_BIT, vec![1, 1]),
        (ColumnType::MYSQL_TYPE_STRING, vec![0xfe, 3]),
        (ColumnType::MYSQL_TYPE_GEOMETRY, vec![4]),
    ];
    let d = dec(ColumnKind::Text { max_chars: None });
    let mut img = Image::default();
    let mut scratch = Vec::new();
    for _ in 0..3000 {
        let cols: Vec<MapColumn> = (0..1 + rng.below(6))
            .map(|_| {
                let (ty, meta) = &types[rng.below(types.len() as u64) as usize];
                column(*ty, meta, rng.below(2) == 0)
            })
            .collect();
        let l = layout(cols);
        let present: Vec<bool> = l.columns.iter().map(|_| rng.below(4) > 0).collect();
        let len = rng.below(40) as usize;
        let data = rng.bytes(len);
        let mut pos = 0;
        if read_image(&l, &data, &mut pos, &present, rng.below(5) == 0, &mut img).is_ok() {
            assert!(pos <= data.len());
            for (i, c) in l.columns.iter().enumerate() {
                if let Cell::Value { partial, .. } = img.cells[i] {
                    let bytes = img.bytes(&data, i).expect("inside the data");
                    let _ = text(c, &d, bytes, partial, &mut scratch);
                }
            }
        }
    }
}

/// A valid image of an `orders`-like row, then every truncation of it (each must be refused)
/// and random corruptions of it (an error or values, never a panic).
#[test]
fn truncated_and_corrupted_row_images_are_refused_or_decoded_never_a_panic() {
    let l = layout(vec![
        column(ColumnType::MYSQL_TYPE_LONGLONG, &[], true),
        column(ColumnType::MYSQL_TYPE_LONG, &[], false),
        column(ColumnType::MYSQL_TYPE_ENUM, &[0xf7, 1], false),
        column(ColumnType::MYSQL_TYPE_NEWDECIMAL, &[12, 2], false),
        column(ColumnType::MYSQL_TYPE_DOUBLE, &[8], false),
        column(ColumnType::MYSQL_TYPE_VARCHAR, &[0xfc, 3], false),
        column(ColumnType::MYSQL_TYPE_DATETIME2, &[6], false),
        column(ColumnType::MYSQL_TYPE_TIMESTAMP2, &[0], false),
        column(ColumnType::MYSQL_TYPE_NEWDATE, &[], false),
        column(ColumnType::MYSQL_TYPE_BLOB, &[4], false),
        column(ColumnType::MYSQL_TYPE_TIME2, &[4], false),
    ]);
    let mut row = vec![0b0000_0000, 0b0000_0000];
    row.extend(7u64.to_le_bytes());
    row.extend((-3i32).to_le_bytes());
    row.push(2);
    row.extend([0x80, 0, 0, 0x30, 0x39, 0x63]);
    row.extend(2.5f64.to_le_bytes());
    row.extend([5, 0]);
    row.extend(b"hello");
    row.extend([0x99, 0xab, 0xc4, 0x10, 0x00, 0x0f, 0x42, 0x3f]);
    row.extend(1_700_000_000u32.to_be_bytes());
    row.extend([0x21, 0xc8, 0x0f]);
    row.extend(13u32.to_le_bytes());
    row.extend(br#"{"k": [1, 2]}"#);
    row.extend([0x80, 0x10, 0x00, 0x00, 0x01]); // 01:00:00.0001
    let kinds: Vec<ColumnDecoding> = vec![
        dec(ColumnKind::Integer {
            width: IntWidth::Big,
            unsigned: true,
        }),
        dec(ColumnKind::Integer {
            width: IntWidth::Int,
            unsigned: false,
        }),
        dec(ColumnKind::Enum {
            values: vec!["new".into(), "paid".into()],
        }),
        dec(ColumnKind::Decimal {
            precision: 12,
            scale: 2,
        }),
        dec(ColumnKind::Double),
        dec(ColumnKind::Text { max_chars: None }),
        dec(ColumnKind::DateTime { fsp: 6 }),
        dec(ColumnKind::Timestamp { fsp: 0 }),
        dec(ColumnKind::Date),
        dec(ColumnKind::Json),
        dec(ColumnKind::Time { fsp: 4 }),
    ];
    let present = vec![true; l.columns.len()];
    let (mut img, mut scratch) = (Image::default(), Vec::new());
    let mut pos = 0;
    read_image(&l, &row, &mut pos, &present, false, &mut img).unwrap();
    assert_eq!(pos, row.len());
    let texts: Vec<String> = (0..kinds.len())
        .map(|i| {
            let b = img.bytes(&row, i).unwrap();
            String::from_utf8(
                text(&l.columns[i], &kinds[i], b, false, &mut scratch)
                    .unwrap()
                    .to_vec(),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(
        texts,
        [
            "7",
            "-3",
            "paid",
            "12345.99",
            "2.5",
            "hello",
            "2022-01-02 01:00:00.999999",
            "2023-11-14 22:13:20",
            "2020-01-01",
            r#"{"k": [1, 2]}"#,
            "01:00:00.0001"
        ]
    );
    for cut in 0..row.len() {
        let mut pos = 0;
        assert!(
            read_image(&l, &row[..cut], &mut pos, &present, false, &mut img).is_err(),
            "cut at {cut}"
        );
    }
    let mut rng = Rng(5);
    for _ in 0..20_000 {
        let mut bad = row.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(bad.len() as u64) as usize;
            bad[i] = rng.next() as u8;
        }
        let mut pos = 0;
        if read_image(&l, &bad, &mut pos, &present, rng.below(8) == 0, &mut img).is_ok() {
            for (i, (col, kind)) in l.columns.iter().zip(&kinds).enumerate() {
                if let Some(b) = img.bytes(&bad, i) {
                    let _ = text(col, kind, b, false, &mut scratch);
                }
            }
        }
    }
}
