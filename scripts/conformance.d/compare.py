"""Compare what a Singer target loaded into PostgreSQL with the MariaDB source, cell by cell.

Used by scripts/conformance; runs in the target-postgres virtualenv (for psycopg).

  compare.py overflow-columns --dbs fx,demo
      prints {stream_id: [column, ...]}: integer columns holding values above
      9223372036854775807, which target-postgres can only store in a bigint column
  compare.py compare --dbs fx,demo --pg-dsn DSN --schema S --mode record|jsonl|parquet
                     [--mapped-text-columns JSON] --report FILE.json
      compares every table and view of the databases with its landed table, prints a report
      and exits 1 when any cell, row or column does not match
  compare.py summary REPORT.json...
      prints the known differences of all reports, with their reasons

MariaDB is read with the `mariadb` command-line client (host, port and user from the
--my-* options, the password from MYSQL_PWD); every value is fetched as HEX() of its text (of its
bytes for binary columns), so tabs, newlines, NUL and non-UTF-8 bytes cannot be confused with the
client's output format. PostgreSQL is read with psycopg (json/jsonb as text, parsed here with
exact decimals).

Each cell is first compared strictly after a normalisation that loses nothing: integers as
integers, booleans as booleans (tinyint(1)/bit(1) 0/1 in the source), decimals as their exact
digits (scale included), float as the 32-bit value, double as the 64-bit value, date-times as
instants with microseconds (UTC), zero/invalid dates as NULL, binary as bytes (base64 text
decoded), JSON and GeoJSON as parsed JSON with exact numbers, strings exactly. A cell that does
not match strictly may match one of the KNOWN rules below (each a limitation outside the tap, with
its reason); it is then counted under that rule instead of as a mismatch. A rule marked fatal is
shown with the known differences but still fails the run: it is something the tap should change.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
from collections import Counter, defaultdict
from decimal import Decimal, InvalidOperation

BIGINT_MAX = 2**63 - 1

# Known rules named here (comma-separated) are accepted even when marked fatal.
ACCEPTED = {x for x in os.environ.get("CONFORMANCE_ACCEPT", "").split(",") if x}


def is_fatal(rule: str) -> bool:
    return KNOWN[rule]["fatal"] and rule not in ACCEPTED

KNOWN = {
    "nul-in-text": {
        "side": "target",
        "fatal": False,
        "reason": "PostgreSQL text cannot hold U+0000; target-postgres (sanitize_null_text_characters: "
        "true, without which the load fails) replaces it with U+FFFD",
    },
    "json-null-vs-sql-null": {
        "side": "target/Singer",
        "fatal": False,
        "reason": "a Singer record carries null for both SQL NULL and the JSON document `null`, and "
        "target-postgres stores None in a jsonb column as the JSON value null (SQLAlchemy JSONB, "
        "none_as_null=False): SQL NULL and JSON null cannot be told apart after loading",
    },
    "bigint-above-int64-as-text": {
        "side": "target",
        "fatal": False,
        "reason": "target-postgres creates bigint for every integer schema wider than int32 (it ignores "
        "\"maximum\": 18446744073709551615) and fails with 'bigint out of range'; the script maps "
        "these columns to strings with a target stream map (str(col)) so the exact digits land as text",
    },
    "parquet-json-as-text": {
        "side": "tap design + target",
        "fatal": False,
        "reason": "the tap writes JSON and GeoJSON columns into Parquet as Utf8 JSON text (Parquet has no "
        "type that pyarrow's to_pylist() turns back into an arbitrary JSON value); the SDK target then "
        "sees a Python str and target-postgres stores it as a jsonb string holding the document text",
    },
    "parquet-double-15-digits": {
        "side": "target",
        "fatal": False,
        "reason": "rows from Parquet reach target-postgres as Python floats, which psycopg sends as float8; "
        "PostgreSQL's float8 -> numeric cast keeps only 15 significant digits (DBL_DIG), so doubles "
        "needing 16-17 digits land rounded (compared here at 15 significant digits)",
    },
    "parquet-binary-as-bytes": {
        "side": "tap design + target",
        "fatal": False,
        "reason": "BATCH Parquet files keep binary/blob columns as Parquet BINARY (the BATCH issue asks for "
        "'binary as binary'); pyarrow hands the SDK target Python bytes, and target-postgres stores them in the "
        "text column (SCHEMA: string, contentEncoding base64) as bytea hex text ('\\x0001...') instead of the "
        "base64 that RECORD and JSONL deliver. The bytes are intact (checked cell by cell); only the "
        "representation differs. Use JSONL batches (or RECORD mode) where the landed text must be base64.",
    },

}

# ----------------------------------------------------------------------------------------------
# MariaDB through the mariadb client

MY = {}


def my_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def my_lit(text: str) -> str:
    """A string literal that needs no escaping: a hex literal converted to utf8mb4."""
    if not text:
        return "''"
    return "CONVERT(X'" + text.encode("utf-8").hex() + "' USING utf8mb4)"


def my_select(exprs: list[str], rest: str) -> list[list[bytes | None]]:
    """SELECT exprs rest; each value comes back as bytes (None for NULL)."""
    wrapped = ", ".join(f"IF(({e}) IS NULL, 'N', CONCAT('V', HEX({e})))" for e in exprs)
    sql = f"SELECT {wrapped} {rest}"
    cmd = [
        "mariadb", "--no-defaults", "--batch", "--raw", "--skip-column-names",
        "--default-character-set=utf8mb4", "--max-allowed-packet=1G",
        "-h", MY["host"], "-P", str(MY["port"]), "-u", MY["user"], "-e", sql,
    ]
    res = subprocess.run(cmd, capture_output=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"mariadb client failed ({res.returncode}): {res.stderr.decode(errors='replace')}\n{sql[:500]}")
    rows = []
    for line in res.stdout.split(b"\n"):
        if not line:
            continue
        fields = line.split(b"\t")
        if len(fields) != len(exprs):
            raise SystemExit(f"unexpected mariadb client output: {line[:200]!r}")
        row = []
        for f in fields:
            if f == b"N":
                row.append(None)
            elif f.startswith(b"V"):
                row.append(binascii.unhexlify(f[1:]))
            else:
                raise SystemExit(f"unexpected mariadb client field: {f[:100]!r}")
        rows.append(row)
    return rows


def s(b: bytes | None) -> str | None:
    return None if b is None else b.decode("utf-8")


INT_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year"}
BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
GEO_TYPES = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
             "multipolygon", "geometrycollection", "geomcollection"}


class Column:
    def __init__(self, name, data_type, column_type, is_json):
        self.name = name
        self.data_type = data_type.lower()
        self.column_type = column_type.lower()
        self.kind = self._kind(is_json)

    def _kind(self, is_json):
        t, ct = self.data_type, self.column_type
        if is_json or t == "json":
            return "json"
        if t == "tinyint" and ct.startswith("tinyint(1)"):
            return "bool"
        if t == "bit":
            return "bool" if ct == "bit(1)" else "int"
        if t in INT_TYPES:
            return "int"
        if t == "decimal":
            return "decimal"
        if t == "float":
            return "float32"
        if t in ("double", "real"):
            return "float64"
        if t == "date":
            return "date"
        if t in ("datetime", "timestamp"):
            return "datetime"
        if t == "time":
            return "time"
        if t in BINARY_TYPES:
            return "binary"
        if t in GEO_TYPES:
            return "geojson"
        return "string"

    def select_expr(self) -> str:
        c = my_ident(self.name)
        if self.kind == "binary":
            return c
        if self.data_type == "bit":
            return f"CONCAT({c} + 0)"
        if self.kind == "float32":
            return f"CONCAT(CAST({c} AS DOUBLE))"  # the exact widened value, not 6 digits
        if self.kind == "geojson":
            return f"ST_AsGeoJSON({c})"
        return f"CONCAT({c})"

    def bit_width(self) -> int:
        m = re.match(r"bit\((\d+)\)", self.column_type)
        return int(m.group(1)) if m else 1


class Table:
    def __init__(self, db, name, is_view):
        self.db, self.name, self.is_view = db, name, is_view
        self.columns: list[Column] = []
        self.pk: list[str] = []

    @property
    def stream(self):
        return f"{self.db}-{self.name}"

    @property
    def pg_table(self):
        # singer-sdk SQLSink.table_name: the last '-' part of the stream id; target-postgres
        # keeps names as they are (its conform_name is the identity)
        return self.stream.split("-")[-1]


def load_source(dbs: list[str]) -> list[Table]:
    in_dbs = ", ".join(my_lit(d) for d in dbs)
    tables = {}
    for db, name, ttype in my_select(
        ["TABLE_SCHEMA", "TABLE_NAME", "TABLE_TYPE"],
        f"FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({in_dbs}) ORDER BY TABLE_SCHEMA, TABLE_NAME",
    ):
        t = Table(s(db), s(name), s(ttype) == "VIEW")
        tables[(t.db, t.name)] = t
    json_cols = set()
    for db, tname, cname, clause in my_select(
        ["CONSTRAINT_SCHEMA", "TABLE_NAME", "CONSTRAINT_NAME", "CHECK_CLAUSE"],
        f"FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN ({in_dbs}) AND LEVEL = 'Column'",
    ):
        if s(clause).replace(" ", "").lower() == f"json_valid({my_ident(s(cname))})".lower():
            json_cols.add((s(db), s(tname), s(cname)))
    for db, tname, cname, dtype, ctype in my_select(
        ["TABLE_SCHEMA", "TABLE_NAME", "COLUMN_NAME", "DATA_TYPE", "COLUMN_TYPE"],
        f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({in_dbs}) "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
    ):
        key = (s(db), s(tname))
        if key in tables:
            tables[key].columns.append(
                Column(s(cname), s(dtype), s(ctype), (s(db), s(tname), s(cname)) in json_cols))
    for db, tname, cname in my_select(
        ["TABLE_SCHEMA", "TABLE_NAME", "COLUMN_NAME"],
        f"FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({in_dbs}) AND INDEX_NAME = 'PRIMARY' "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME, SEQ_IN_INDEX",
    ):
        key = (s(db), s(tname))
        if key in tables:
            tables[key].pk.append(s(cname))
    return list(tables.values())


def read_source_rows(t: Table) -> list[list[bytes | None]]:
    return my_select([c.select_expr() for c in t.columns], f"FROM {my_ident(t.db)}.{my_ident(t.name)}")


# ----------------------------------------------------------------------------------------------
# Normalisation


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def parse_json(text: str):
    return json.loads(text, parse_float=Decimal, parse_int=int)


def canon_json(v) -> str:
    """Canonical text of a JSON value: sorted keys, numbers by numeric value."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, Decimal, float)):
        d = Decimal(v) if not isinstance(v, float) else Decimal(repr(v))
        if d == d.to_integral_value():
            return str(int(d))
        return format(d.normalize(), "f")
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(canon_json(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canon_json(v[k]) for k in sorted(v)) + "}"
    raise TypeError(type(v))


def parse_my_date(text: str):
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None  # zero or invalid date (0000-00-00, 2024-00-10): the tap must emit null


def parse_my_datetime(text: str):
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?", text)
    if not m:
        raise ValueError(f"unexpected datetime text {text!r}")
    y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
    frac = int((m.group(7) or "0").ljust(6, "0"))
    try:
        return dt.datetime(y, mo, d, h, mi, sec, frac)
    except ValueError:
        return None  # zero or invalid date


def canon_source(col: Column, raw: bytes | None):
    if raw is None:
        return None
    k = col.kind
    if k == "binary":
        return "x:" + raw.hex()
    text = raw.decode("utf-8")
    if k == "bool":
        return "b:" + str(int(text) != 0)
    if k == "int":
        return "i:%d" % int(text)
    if k == "decimal":
        return "d:" + format(Decimal(text), "f")
    if k == "float32":
        return "f32:" + repr(f32(float(text)))
    if k == "float64":
        return "f64:" + repr(float(text))
    if k == "date":
        d = parse_my_date(text)
        return None if d is None else "date:" + d.isoformat()
    if k == "datetime":
        d = parse_my_datetime(text)
        return None if d is None else "ts:" + d.isoformat(timespec="microseconds")
    if k in ("json", "geojson"):
        return "j:" + canon_json(parse_json(text))
    return "s:" + text  # string, time: exactly


NUMERIC_PG = {"numeric", "float4", "float8", "int2", "int4", "int8"}
TEXT_PG = {"text", "varchar", "bpchar", "name"}


def canon_landed(col: Column, udt: str, v):
    if v is None:
        return None
    k = col.kind
    try:
        if k == "bool" and udt == "bool":
            return "b:" + str(bool(v))
        if k == "int" and udt in ("int2", "int4", "int8"):
            return "i:%d" % v
        if k == "int" and udt == "numeric" and v == v.to_integral_value() and v.as_tuple().exponent >= 0:
            return "i:%d" % int(v)
        if k == "decimal" and udt == "numeric":
            return "d:" + format(v, "f")
        if k == "float32" and udt in NUMERIC_PG:
            return "f32:" + repr(f32(float(v)))
        if k == "float64" and udt in NUMERIC_PG:
            return "f64:" + repr(float(v))
        if k == "date" and udt == "date":
            return "date:" + v.isoformat()
        if k == "datetime" and udt in ("timestamp", "timestamptz"):
            if v.tzinfo is not None:
                v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
            return "ts:" + v.isoformat(timespec="microseconds")
        if k in ("string", "time") and udt in TEXT_PG:
            return "s:" + v
        if k == "binary" and udt == "bytea":
            return "x:" + bytes(v).hex()
        if k == "binary" and udt in TEXT_PG:
            return "x:" + base64.b64decode(v, validate=True).hex()
        if k in ("json", "geojson") and udt in ("json", "jsonb"):
            return "j:" + canon_json(parse_json(v))
    except (ValueError, TypeError, InvalidOperation, binascii.Error, OverflowError):
        pass
    return f"?{udt}:{v!r}"


def known_rule(col: Column, udt: str, src, landed_raw, landed, mode: str, mapped_text: bool):
    """The KNOWN rule under which a strict mismatch is explained, or None."""
    k = col.kind
    if k in ("string", "time") and src is not None and "\x00" in src and landed == src.replace("\x00", "\ufffd"):
        return "nul-in-text"
    if k in ("json", "geojson") and {src, landed} == {None, "j:null"}:
        return "json-null-vs-sql-null"
    if (k == "int" and mapped_text and udt in TEXT_PG and src is not None and landed_raw is not None
            and re.fullmatch(r"-?\d+", landed_raw) and "i:%d" % int(landed_raw) == src):
        return "bigint-above-int64-as-text"
    if mode == "parquet":
        if k in ("json", "geojson") and udt in ("json", "jsonb") and landed_raw is not None and src is not None:
            try:
                inner = parse_json(landed_raw)
                if isinstance(inner, str) and "j:" + canon_json(parse_json(inner)) == src:
                    return "parquet-json-as-text"
            except ValueError:
                pass
        if k == "float64" and udt == "numeric" and src is not None and landed_raw is not None:
            x = float(src[4:])
            if Decimal("%.15g" % x) == landed_raw:
                return "parquet-double-15-digits"
        if (k == "binary" and udt in TEXT_PG and src is not None and landed_raw is not None
                and landed_raw.startswith("\\x")):
            try:
                if "x:" + bytes.fromhex(landed_raw[2:]).hex() == src:
                    return "parquet-binary-as-bytes"
            except ValueError:
                pass
    return None


ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", **{chr(i): f"\\x{i:02x}" for i in (*range(32), 127) if chr(i) not in "\n\r\t"}}


def show(v, strip_kind=False) -> str:
    """A value for a report line: control characters escaped, long values shortened."""
    if v is None:
        return "NULL"
    r = v if isinstance(v, str) else repr(v)
    if strip_kind and isinstance(v, str) and ":" in v:
        r = r.split(":", 1)[1]
    r = "".join(ESCAPES.get(ch, ch) if ord(ch) < 32 or ch in "\\\x7f" else ch for ch in r)
    if len(r) > 90:
        r = f"{r[:60]}…{r[-20:]} ({len(r)} chars)"
    return r


# ----------------------------------------------------------------------------------------------
# PostgreSQL


def pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pg_columns(cur, schema, table):
    cur.execute(
        "SELECT column_name, udt_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    )
    return dict(cur.fetchall())


def pg_rows(cur, schema, table, names, udts):
    exprs = [pg_ident(n) + ("::text" if udts[n] in ("json", "jsonb") else "") for n in names]
    where = ""
    if "_sdc_deleted_at" in udts:
        where = ' WHERE "_sdc_deleted_at" IS NULL'
    cur.execute(f"SELECT {', '.join(exprs) or 'NULL'} FROM {pg_ident(schema)}.{pg_ident(table)}{where}")
    rows = cur.fetchall()
    deleted = 0
    if where:
        cur.execute(f'SELECT count(*) FROM {pg_ident(schema)}.{pg_ident(table)} WHERE "_sdc_deleted_at" IS NOT NULL')
        deleted = cur.fetchone()[0]
    return rows, deleted


# ----------------------------------------------------------------------------------------------
# Compare


class TableResult:
    def __init__(self, t: Table, schema: str):
        self.t = t
        self.schema = schema
        self.src_rows = self.landed_rows = self.rows_compared = self.cells = 0
        self.mismatches = 0
        self.known = Counter()
        self.examples: list[str] = []
        self.notes: list[str] = []

    def mismatch(self, text: str):
        self.mismatches += 1
        if len(self.examples) < int(os.environ.get("CONFORMANCE_SHOW_MISMATCHES", "6")):
            self.examples.append(text)


def compare_table(t: Table, cur, schema: str, mode: str, mapped: set[str], known_examples: dict) -> TableResult:
    r = TableResult(t, schema)
    src = read_source_rows(t)
    r.src_rows = len(src)
    udts = pg_columns(cur, schema, t.pg_table)
    if not udts:
        r.mismatch(f"no landed table {schema}.{t.pg_table} ({len(src)} source rows)")
        return r
    src_names = [c.name for c in t.columns]
    present = [c for c in t.columns if c.name in udts]
    for c in t.columns:
        if c.name not in udts:
            r.mismatch(f"column {c.name!r} missing in the landed table")
    for n in udts:
        if n not in src_names and not n.startswith("_sdc_"):
            r.mismatch(f"landed table has a column {n!r} that the source does not have")
    landed, deleted = pg_rows(cur, schema, t.pg_table, [c.name for c in present], udts)
    r.landed_rows = len(landed)
    if deleted:
        r.notes.append(f"{deleted} soft-deleted rows (_sdc_deleted_at set) not counted")

    idx = {c.name: i for i, c in enumerate(t.columns)}
    src_canon = [[canon_source(c, row[idx[c.name]]) for c in present] for row in src]
    landed_canon = [[canon_landed(c, udts[c.name], row[j]) for j, c in enumerate(present)] for row in landed]

    def cell_check(j, sv, lv, lraw, where):
        c = present[j]
        r.cells += 1
        if sv == lv:
            return True
        rule = known_rule(c, udts[c.name], sv, lraw, lv, mode, f"{t.stream}.{c.name}" in mapped)
        if rule:
            r.known[rule] += 1
            known_examples.setdefault(
                rule, f"{t.stream} {where} {c.name}: source {show(sv, True)} -> landed {show(lraw)}")
            return True
        r.mismatch(f"{where} column {c.name}: source {show(sv, True)} | landed {show(lraw)} "
                   f"(normalised as {c.kind}: {show(lv, True)})")
        return False

    def cells_equal_or_known(srow, lrow):
        for j, c in enumerate(present):
            sv, lv = srow[j], lrow[j]
            if sv != lv and not known_rule(c, udts[c.name], sv, lrow_raw_of(lrow, j), lv, mode,
                                           f"{t.stream}.{c.name}" in mapped):
                return False
        return True

    raw_by_id = {id(lc): landed[i] for i, lc in enumerate(landed_canon)}

    def lrow_raw_of(lrow, j):
        return raw_by_id[id(lrow)][j]

    key_pos = [j for j, c in enumerate(present) if c.name in t.pk] if t.pk else []
    if t.pk and len(key_pos) == len(t.pk):
        pk_order = [next(j for j, c in enumerate(present) if c.name == k) for k in t.pk]
        landed_by_key = {}
        for lrow in landed_canon:
            key = tuple(lrow[j] for j in pk_order)
            if key in landed_by_key:
                r.mismatch(f"key {fmt_key(key)}: landed twice")
            landed_by_key[key] = lrow
        seen = set()
        for srow in src_canon:
            key = tuple(srow[j] for j in pk_order)
            lrow = landed_by_key.get(key)
            if lrow is None:
                r.mismatch(f"key {fmt_key(key)}: row missing in the landed table")
                continue
            seen.add(key)
            r.rows_compared += 1
            for j in range(len(present)):
                cell_check(j, srow[j], lrow[j], lrow_raw_of(lrow, j), f"key {fmt_key(key)}")
        for key in landed_by_key:
            if key not in seen:
                r.mismatch(f"key {fmt_key(key)}: landed row not in the source")
    else:
        # no primary key (or a view): compare as multisets of rows
        r.notes.append("no primary key: compared as multisets")
        by_tuple = defaultdict(list)
        for lrow in landed_canon:
            by_tuple[tuple(lrow)].append(lrow)
        leftovers_src = []
        for srow in src_canon:
            bucket = by_tuple.get(tuple(srow))
            if bucket:
                bucket.pop()
                r.rows_compared += 1
                r.cells += len(present)
            else:
                leftovers_src.append(srow)
        remaining = [lrow for bucket in by_tuple.values() for lrow in bucket]
        for srow in leftovers_src:
            match = next((lrow for lrow in remaining if cells_equal_or_known(srow, lrow)), None)
            if match is None:
                r.mismatch("row only in the source: " + show(str([show(v, True) for v in srow])))
                continue
            remaining = [x for x in remaining if x is not match]
            r.rows_compared += 1
            for j in range(len(present)):
                cell_check(j, srow[j], match[j], lrow_raw_of(match, j), "row")
        for lrow in remaining:
            r.mismatch("row only in the landed table: " + show(str([show(v, True) for v in lrow])))
    return r


def fmt_key(key) -> str:
    return "(" + ", ".join("NULL" if v is None else show(v.split(":", 1)[1]) for v in key) + ")"


def cmd_compare(args):
    import psycopg

    tables = load_source(args.dbs.split(","))
    mapped = set()
    if args.mapped_text_columns:
        for stream, cols in json.loads(args.mapped_text_columns).items():
            mapped.update(f"{stream}.{c}" for c in cols)
    names = Counter(t.pg_table for t in tables)
    clash = [n for n, k in names.items() if k > 1]
    if clash:
        raise SystemExit(f"streams land in the same target table: {clash}")
    known_examples: dict[str, str] = {}
    results = []
    with psycopg.connect(args.pg_dsn, autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        for t in tables:
            results.append(compare_table(t, cur, args.schema, args.mode, mapped, known_examples))
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (args.schema,))
        extra = sorted({row[0] for row in cur.fetchall()} - {t.pg_table for t in tables})

    w = max(len(r.t.stream) for r in results)
    wt = max(len(r.t.pg_table) for r in results)
    print(f"  in schema {args.schema}; rows = source/landed; ok = every row and cell matched")
    print(f"     {'stream':<{w}}  {'table':<{wt}} {'rows':>9} {'compared':>8} {'cells':>6} {'mismatch':>8}  known differences (cells)")
    total_mis = 0
    for r in results:
        total_mis += r.mismatches
        kn = ", ".join(f"{k} {n}" for k, n in sorted(r.known.items())) or "-"
        mark = "BAD" if r.mismatches else ("!! " if any(is_fatal(k) for k in r.known) else "ok ")
        print(f"  {mark}{r.t.stream:<{w}}  {r.t.pg_table:<{wt}} "
              f"{f'{r.src_rows}/{r.landed_rows}':>9} {r.rows_compared:>8} {r.cells:>6} {r.mismatches:>8}  {kn}")
        for note in r.notes:
            if not note.startswith("no primary key"):
                print(f"      note: {note}")
        for e in r.examples:
            print(f"      MISMATCH {e}")
        if r.mismatches > len(r.examples):
            print(f"      ... and {r.mismatches - len(r.examples)} more")
    if extra:
        print(f"  note: tables in {args.schema} that no source table maps to: {extra}")
    known_total = Counter()
    for r in results:
        known_total.update(r.known)
    fatal = {k: n for k, n in known_total.items() if is_fatal(k)}
    for k in sorted(known_total):
        flag = " (FATAL: tap should change)" if is_fatal(k) else ""
        print(f"  known difference {k}{flag}: {known_total[k]} cells, e.g. {known_examples[k]}")
    ok = total_mis == 0 and not fatal
    report = {
        "mode": args.mode,
        "schema": args.schema,
        "ok": ok,
        "tables": len(results),
        "rows": sum(r.rows_compared for r in results),
        "cells": sum(r.cells for r in results),
        "mismatches": total_mis,
        "known": {k: {"count": n, "example": known_examples[k], **KNOWN[k], "fatal": is_fatal(k)}
                  for k, n in known_total.items()},
        "per_table": [
            {"stream": r.t.stream, "rows": r.rows_compared, "cells": r.cells, "mismatches": r.mismatches,
             "known": dict(r.known)} for r in results
        ],
    }
    with open(args.report, "w") as f:
        json.dump(report, f, indent=1)
    print(f"  => {len(results)} tables, {report['rows']} rows, {report['cells']} cells compared; "
          f"{total_mis} mismatches; {sum(known_total.values())} cells under known differences"
          + (f"; FATAL known differences: {fatal}" if fatal else ""))
    return 0 if ok else 1


def cmd_overflow_columns(args):
    out = defaultdict(list)
    for t in load_source(args.dbs.split(",")):
        if t.is_view:
            continue
        for c in t.columns:
            wide = (c.data_type == "bigint" and "unsigned" in c.column_type) or (
                c.data_type == "bit" and c.bit_width() == 64)
            if not wide:
                continue
            (mx,) = my_select([f"CONCAT(MAX({my_ident(c.name)} + 0))"], f"FROM {my_ident(t.db)}.{my_ident(t.name)}")[0]
            if mx is not None and int(mx) > BIGINT_MAX:
                out[t.stream].append(c.name)
    print(json.dumps(out, ensure_ascii=False))
    return 0


def cmd_report_line(args):
    with open(args.report) as f:
        r = json.load(f)
    known = sum(v["count"] for v in r["known"].values())
    print(f"{r['tables']} tables, {r['rows']} rows, {r['cells']} cells compared, {r['mismatches']} mismatches, "
          f"{known} cells under known differences")
    return 0 if r["ok"] else 1


def cmd_summary(args):
    merged = {}
    for path in args.reports:
        with open(path) as f:
            rep = json.load(f)
        for k, v in rep["known"].items():
            m = merged.setdefault(k, dict(v, modes={}))
            m["modes"][rep["mode"]] = v["count"]
    if not merged:
        print("  (none)")
    for k in sorted(merged, key=lambda k: (is_fatal(k), k)):
        v = merged[k]
        modes = ", ".join(f"{m}: {n} cells" for m, n in v["modes"].items())
        flag = "FAILS THE RUN (tap should change)" if is_fatal(k) else (
            "accepted by CONFORMANCE_ACCEPT" if KNOWN[k]["fatal"] else "accepted")
        print(f"  - {k} [{v['side']}; {flag}] ({modes})")
        print(textwrap.fill(v["reason"], 100, initial_indent="      why: ", subsequent_indent="      "))
        print(f"      e.g. {v['example']}")
    return 0


def cmd_target_config(args):
    """target-postgres config; the stream maps turn the overflow columns into strings."""
    conf = {
        "host": "127.0.0.1",
        "port": args.port,
        "user": "postgres",
        "password": "unused-trust-auth",
        "database": "postgres",
        "default_target_schema": args.schema,
        "validate_records": True,
        "sanitize_null_text_characters": True,
    }
    overflow = json.loads(args.overflow or "{}")
    if overflow:
        conf["stream_maps"] = {
            stream: {c: f"str({c}) if {c} is not None else None" for c in cols}
            for stream, cols in overflow.items()
        }
    print(json.dumps(conf, ensure_ascii=False, indent=1))
    return 0


def cmd_count_messages(args):
    """Message types in a Singer stream, and the files the BATCH messages name."""
    types = Counter()
    files = set()
    with open(args.file, encoding="utf-8") as f:
        for line in f:
            m = json.loads(line)
            types[m["type"]] += 1
            if m["type"] == "BATCH":
                files.update(m["manifest"])
                types["BATCH " + m["encoding"]["format"] + "/" + m["encoding"].get("compression", "none")] += 1
    order = ["SCHEMA", "RECORD", "BATCH", "ACTIVATE_VERSION", "STATE"]
    parts = [f"{types[k]} {k}" for k in order] + [f"{n} {k}" for k, n in sorted(types.items()) if k not in order]
    if files:
        parts.append(f"{len(files)} batch files")
    print(", ".join(parts))
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--my-host", default="127.0.0.1")
    p.add_argument("--my-port", type=int, default=3306)
    p.add_argument("--my-user", default="root")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--dbs", required=True)
    c.add_argument("--pg-dsn", required=True)
    c.add_argument("--schema", required=True)
    c.add_argument("--mode", required=True, choices=["record", "jsonl", "parquet"])
    c.add_argument("--mapped-text-columns", default="")
    c.add_argument("--report", required=True)
    o = sub.add_parser("overflow-columns")
    o.add_argument("--dbs", required=True)
    tc = sub.add_parser("target-config")
    tc.add_argument("--port", type=int, required=True)
    tc.add_argument("--schema", required=True)
    tc.add_argument("--overflow", default="")
    cm = sub.add_parser("count-messages")
    cm.add_argument("file")
    rl = sub.add_parser("report-line")
    rl.add_argument("report")
    sm = sub.add_parser("summary")
    sm.add_argument("reports", nargs="+")
    args = p.parse_args()
    MY.update(host=args.my_host, port=args.my_port, user=args.my_user)
    return {
        "compare": cmd_compare,
        "overflow-columns": cmd_overflow_columns,
        "target-config": cmd_target_config,
        "count-messages": cmd_count_messages,
        "summary": cmd_summary,
        "report-line": cmd_report_line,
    }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
