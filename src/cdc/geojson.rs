//! Spatial values in the binlog (the servers' internal format: a 4-byte SRID, then WKB) into the
//! GeoJSON the snapshot path reads with MariaDB's `ST_AsGeoJSON`: the same text, byte for byte
//! (structure, spacing and number formatting, checked against the server's output). MySQL's
//! `ST_AsGeoJSON` prints differently (a JSON document), so LOG_BASED refuses spatial columns there.

/// Converts an internal-format geometry to GeoJSON text.
pub fn from_internal(bytes: &[u8]) -> Result<String, String> {
    let wkb = bytes
        .get(4..)
        .ok_or("spatial value shorter than its SRID")?;
    let mut r = Reader { b: wkb, at: 0 };
    let mut out = String::with_capacity(wkb.len() * 2);
    geometry(&mut r, &mut out)?;
    Ok(out)
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let s = self.b.get(self.at..self.at + n).ok_or("truncated WKB")?;
        self.at += n;
        Ok(s)
    }

    fn u32(&mut self, le: bool) -> Result<u32, String> {
        let s = self.take(4)?;
        let a = [s[0], s[1], s[2], s[3]];
        Ok(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }

    fn f64(&mut self, le: bool) -> Result<f64, String> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(if le {
            f64::from_le_bytes(a)
        } else {
            f64::from_be_bytes(a)
        })
    }

    /// A count, checked against the bytes left so corrupt data cannot ask for huge vectors.
    fn count(&mut self, le: bool, min_item: usize) -> Result<usize, String> {
        let n = self.u32(le)? as usize;
        if n.saturating_mul(min_item) > self.b.len().saturating_sub(self.at) {
            return Err("WKB count larger than the value".into());
        }
        Ok(n)
    }
}

/// A coordinate as MariaDB's `ST_AsGeoJSON` prints it: the shortest digits that read back as the
/// same double, in plain notation when the decimal point falls within 15 places (1e-15 <= |x| <
/// 1e15: `100000000000000`, `0.000000000000001`, `0.00000015`), else as
/// `d.ddde<exp>` with no `+` (`1e15`, `1.234567890123456e15`, `1e-16`). Zero, -0 and the
/// non-finite values (which the server prints as 0) are `0`.
fn number(x: f64, out: &mut String) {
    if !x.is_finite() || x == 0.0 {
        out.push('0');
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `1.2345e-16`, `1e15`.
    let sci = format!("{:e}", x.abs());
    let parts = sci
        .split_once('e')
        .and_then(|(m, e)| Some((m.replace('.', ""), e.parse::<i32>().ok()?)));
    let Some((digits, exp)) = parts else {
        out.push_str(&sci);
        return;
    };
    if x < 0.0 {
        out.push('-');
    }
    // The value is 0.DIGITS x 10^point.
    let point = exp + 1;
    let len = digits.len() as i32;
    if (-14..=15).contains(&point) {
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&digits);
        } else if point >= len {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (point - len) as usize));
        } else {
            let (int, frac) = digits.split_at(point as usize);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        }
    } else {
        let (first, rest) = digits.split_at(digits.len().min(1));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push_str(&exp.to_string());
    }
}

fn point(r: &mut Reader<'_>, le: bool, out: &mut String) -> Result<(), String> {
    let (x, y) = (r.f64(le)?, r.f64(le)?);
    out.push('[');
    number(x, out);
    out.push_str(", ");
    number(y, out);
    out.push(']');
    Ok(())
}

fn points(r: &mut Reader<'_>, le: bool, out: &mut String) -> Result<(), String> {
    list(r, le, out, 16, point)
}

fn rings(r: &mut Reader<'_>, le: bool, out: &mut String) -> Result<(), String> {
    list(r, le, out, 4, points)
}

/// A counted WKB list (`min_item` bytes at least per item) as a JSON array of `item`s.
fn list(
    r: &mut Reader<'_>,
    le: bool,
    out: &mut String,
    min_item: usize,
    item: fn(&mut Reader<'_>, bool, &mut String) -> Result<(), String>,
) -> Result<(), String> {
    let n = r.count(le, min_item)?;
    out.push('[');
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        item(r, le, out)?;
    }
    out.push(']');
    Ok(())
}

/// Reads one WKB geometry header: (little endian, type).
fn header(r: &mut Reader<'_>) -> Result<(bool, u32), String> {
    let le = match r.take(1)?[0] {
        0 => false,
        1 => true,
        b => return Err(format!("bad WKB byte order {b}")),
    };
    Ok((le, r.u32(le)?))
}

/// The coordinates of a member of a multi-geometry, whose own header must have `want` type.
fn member(r: &mut Reader<'_>, want: u32, out: &mut String) -> Result<(), String> {
    let (le, ty) = header(r)?;
    if ty != want {
        return Err(format!(
            "WKB multi-geometry member of type {ty}, expected {want}"
        ));
    }
    match ty {
        1 => point(r, le, out),
        2 => points(r, le, out),
        _ => rings(r, le, out),
    }
}

fn geometry(r: &mut Reader<'_>, out: &mut String) -> Result<(), String> {
    let (le, ty) = header(r)?;
    let name = match ty {
        1 => "Point",
        2 => "LineString",
        3 => "Polygon",
        4 => "MultiPoint",
        5 => "MultiLineString",
        6 => "MultiPolygon",
        7 => "GeometryCollection",
        other => return Err(format!("unsupported WKB geometry type {other}")),
    };
    out.push_str(&format!("{{\"type\": \"{name}\", "));
    if ty == 7 {
        let n = r.count(le, 5)?;
        out.push_str("\"geometries\": [");
        for i in 0..n {
            if i > 0 {
                out.push_str(", ");
            }
            geometry(r, out)?;
        }
        out.push_str("]}");
        return Ok(());
    }
    out.push_str("\"coordinates\": ");
    match ty {
        1 => point(r, le, out)?,
        2 => points(r, le, out)?,
        3 => rings(r, le, out)?,
        _ => {
            let n = r.count(le, 5)?;
            out.push('[');
            for i in 0..n {
                if i > 0 {
                    out.push_str(", ");
                }
                member(r, ty - 3, out)?;
            }
            out.push(']');
        }
    }
    out.push('}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wkb_point(x: f64, y: f64) -> Vec<u8> {
        let mut v = vec![1u8];
        v.extend(1u32.to_le_bytes());
        v.extend(x.to_le_bytes());
        v.extend(y.to_le_bytes());
        v
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn num(x: f64) -> String {
        let mut s = String::new();
        number(x, &mut s);
        s
    }

    /// Each pair: a coordinate and the text MariaDB 10.11's `ST_AsGeoJSON` printed for it.
    #[test]
    fn numbers_are_printed_as_mariadb_prints_them() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (7.0, "7"),
            (-1.0, "-1"),
            (1000.0, "1000"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (0.5, "0.5"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-122.41941550000001, "-122.41941550000001"),
            (37.77492950000001, "37.77492950000001"),
            (123456.789, "123456.789"),
            (123_456_789.123_456_79, "123456789.12345679"),
            (-0.000123, "-0.000123"),
            (0.0001, "0.0001"),
            (0.00001, "0.00001"),
            (0.000001, "0.000001"),
            (1.5e-7, "0.00000015"),
            (1.2345e-5, "0.000012345"),
            (1e-15, "0.000000000000001"),
            (-1e-15, "-0.000000000000001"),
            (1.2345678e-15, "0.0000000000000012345678"),
            (1.2345678901234567e-15, "0.0000000000000012345678901234568"),
            (9.999999999999999e-16, "9.999999999999999e-16"),
            (1e-16, "1e-16"),
            (-1e-16, "-1e-16"),
            (1.2345678e-16, "1.2345678e-16"),
            (1e-300, "1e-300"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (1e14, "100000000000000"),
            (1.2345678e14, "123456780000000"),
            (99999999999999.9, "99999999999999.9"),
            (123456789012345.0, "123456789012345"),
            (999999999999999.0, "999999999999999"),
            (999999999999999.9, "999999999999999.9"),
            (-999999999999999.9, "-999999999999999.9"),
            (1e15, "1e15"),
            (-1e15, "-1e15"),
            (1.5e15, "1.5e15"),
            (1234567890123456.0, "1.234567890123456e15"),
            (9999999999999998.0, "9.999999999999998e15"),
            (1e16, "1e16"),
            (12345678901234567.0, "1.2345678901234568e16"),
            (1e17, "1e17"),
            (1e21, "1e21"),
            (1.2345678e22, "1.2345678e22"),
            (1e300, "1e300"),
            (1.7976931348623157e308, "1.7976931348623157e308"),
            (-1e308, "-1e308"),
            (f64::NAN, "0"),
            (f64::INFINITY, "0"),
            (f64::NEG_INFINITY, "0"),
        ];
        for (x, want) in cases {
            assert_eq!(num(*x), *want, "{x:e}");
        }
    }

    /// Internal values (`HEX(col)`) and the exact `ST_AsGeoJSON(col)` text of the server.
    #[test]
    fn geometries_are_printed_as_mariadb_prints_them() {
        let cases = [
            // POINT(1 2) with SRID 4326: the SRID is not printed.
            (
                "E61000000101000000000000000000F03F0000000000000040",
                r#"{"type": "Point", "coordinates": [1, 2]}"#,
            ),
            // GEOMETRYCOLLECTION(POINT(1 1),GEOMETRYCOLLECTION(POINT(2 2),LINESTRING(0 0,1 1)))
            (
                "000000000107000000020000000101000000000000000000F03F000000000000F03F01070000000200000001010000000000000000000040000000000000004001020000000200000000000000000000000000000000000000000000000000F03F000000000000F03F",
                r#"{"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1, 1]}, {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [2, 2]}, {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}]}]}"#,
            ),
            // GEOMETRYCOLLECTION(POINT(1 1),GEOMETRYCOLLECTION EMPTY)
            (
                "000000000107000000020000000101000000000000000000F03F000000000000F03F010700000000000000",
                r#"{"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1, 1]}, {"type": "GeometryCollection", "geometries": []}]}"#,
            ),
            // An empty MULTIPOINT and MULTIPOLYGON (ST_GeomFromWKB accepts them).
            (
                "00000000010400000000000000",
                r#"{"type": "MultiPoint", "coordinates": []}"#,
            ),
            (
                "00000000010600000000000000",
                r#"{"type": "MultiPolygon", "coordinates": []}"#,
            ),
            // A NaN / -infinity point from ST_GeomFromWKB prints as zeros.
            (
                "000000000101000000000000000000F87F000000000000F0FF",
                r#"{"type": "Point", "coordinates": [0, 0]}"#,
            ),
            // POINT(-0 -0.0): the sign of zero is not printed.
            (
                "00000000010100000000000000000000800000000000000080",
                r#"{"type": "Point", "coordinates": [0, 0]}"#,
            ),
        ];
        for (h, want) in cases {
            assert_eq!(from_internal(&hex(h)).unwrap(), want, "{h}");
        }
    }

    fn ring(points: &[(f64, f64)]) -> Vec<u8> {
        let mut v = (points.len() as u32).to_le_bytes().to_vec();
        for (x, y) in points {
            v.extend(x.to_le_bytes());
            v.extend(y.to_le_bytes());
        }
        v
    }

    #[test]
    fn polygons_with_holes_and_multi_geometries() {
        // POLYGON((0 0,4 0,4 4,0 4,0 0),(1 1,2 1,2 2,1 2,1 1))
        let mut p = 0u32.to_le_bytes().to_vec();
        p.push(1);
        p.extend(3u32.to_le_bytes());
        p.extend(2u32.to_le_bytes());
        p.extend(ring(&[(0., 0.), (4., 0.), (4., 4.), (0., 4.), (0., 0.)]));
        p.extend(ring(&[(1., 1.), (2., 1.), (2., 2.), (1., 2.), (1., 1.)]));
        assert_eq!(
            from_internal(&p).unwrap(),
            r#"{"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]], [[1, 1], [2, 1], [2, 2], [1, 2], [1, 1]]]}"#
        );
        // MULTILINESTRING((0 0,1 1),(2 2,3 3))
        let mut ml = 0u32.to_le_bytes().to_vec();
        ml.push(1);
        ml.extend(5u32.to_le_bytes());
        ml.extend(2u32.to_le_bytes());
        for l in [[(0., 0.), (1., 1.)], [(2., 2.), (3., 3.)]] {
            ml.push(1);
            ml.extend(2u32.to_le_bytes());
            ml.extend(ring(&l));
        }
        assert_eq!(
            from_internal(&ml).unwrap(),
            r#"{"type": "MultiLineString", "coordinates": [[[0, 0], [1, 1]], [[2, 2], [3, 3]]]}"#
        );
        // MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((2 2,3 2,3 3,2 2),(2.1 2.1,2.2 2.1,2.2 2.2,2.1 2.1)))
        let mut mp = 0u32.to_le_bytes().to_vec();
        mp.push(1);
        mp.extend(6u32.to_le_bytes());
        mp.extend(2u32.to_le_bytes());
        mp.push(1);
        mp.extend(3u32.to_le_bytes());
        mp.extend(1u32.to_le_bytes());
        mp.extend(ring(&[(0., 0.), (1., 0.), (1., 1.), (0., 0.)]));
        mp.push(1);
        mp.extend(3u32.to_le_bytes());
        mp.extend(2u32.to_le_bytes());
        mp.extend(ring(&[(2., 2.), (3., 2.), (3., 3.), (2., 2.)]));
        mp.extend(ring(&[(2.1, 2.1), (2.2, 2.1), (2.2, 2.2), (2.1, 2.1)]));
        assert_eq!(
            from_internal(&mp).unwrap(),
            r#"{"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[2, 2], [3, 2], [3, 3], [2, 2]], [[2.1, 2.1], [2.2, 2.1], [2.2, 2.2], [2.1, 2.1]]]]}"#
        );
    }

    #[test]
    fn points_and_collections() {
        let mut p = 0u32.to_le_bytes().to_vec();
        p.extend(wkb_point(1.5, -2.0));
        assert_eq!(
            from_internal(&p).unwrap(),
            r#"{"type": "Point", "coordinates": [1.5, -2]}"#
        );
        let mut mp = 0u32.to_le_bytes().to_vec();
        mp.push(1);
        mp.extend(4u32.to_le_bytes());
        mp.extend(2u32.to_le_bytes());
        mp.extend(wkb_point(0.0, 0.0));
        mp.extend(wkb_point(1.0, 1e-6));
        assert_eq!(
            from_internal(&mp).unwrap(),
            r#"{"type": "MultiPoint", "coordinates": [[0, 0], [1, 0.000001]]}"#
        );
        let mut gc = 0u32.to_le_bytes().to_vec();
        gc.push(1);
        gc.extend(7u32.to_le_bytes());
        gc.extend(0u32.to_le_bytes());
        assert_eq!(
            from_internal(&gc).unwrap(),
            r#"{"type": "GeometryCollection", "geometries": []}"#
        );
    }

    #[test]
    fn corrupt_values_are_errors() {
        assert!(from_internal(&[0, 0]).is_err());
        let mut p = 0u32.to_le_bytes().to_vec();
        p.extend(&wkb_point(1.0, 2.0)[..10]);
        assert!(from_internal(&p).is_err());
        let mut huge = 0u32.to_le_bytes().to_vec();
        huge.push(1);
        huge.extend(2u32.to_le_bytes());
        huge.extend(u32::MAX.to_le_bytes());
        assert!(from_internal(&huge).is_err());
    }
}
