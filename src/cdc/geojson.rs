//! Spatial values in the binlog (MySQL's internal format: a 4-byte SRID, then WKB) into the
//! GeoJSON the snapshot path reads with `ST_AsGeoJSON`: same structure, same numbers (integral
//! coordinates print as integers, as the servers print them).

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

fn number(x: f64, out: &mut String) {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        out.push_str(&format!("{}", x as i64));
    } else {
        out.push_str(ryu::Buffer::new().format(x));
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
    let n = r.count(le, 16)?;
    out.push('[');
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        point(r, le, out)?;
    }
    out.push(']');
    Ok(())
}

fn rings(r: &mut Reader<'_>, le: bool, out: &mut String) -> Result<(), String> {
    let n = r.count(le, 4)?;
    out.push('[');
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        points(r, le, out)?;
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
        let v: serde_json::Value = serde_json::from_str(&from_internal(&mp).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "MultiPoint", "coordinates": [[0, 0], [1, 0.000001]]})
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
