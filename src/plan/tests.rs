//! Planning without a server: catalogs from Singer JSON, tables built by hand.

use serde_json::{json, Value};

use super::*;
use crate::catalog::discover::ColumnInfo;
use crate::catalog::types::IntWidth;
use crate::catalog::write::build_stream;

fn col(name: &str, column_type: &str, kind: ColumnKind) -> ColumnInfo {
    ColumnInfo {
        name: name.into(),
        column_type: column_type.into(),
        nullable: true,
        charset: None,
        kind,
    }
}

fn int() -> ColumnKind {
    ColumnKind::Integer {
        width: IntWidth::Int,
        unsigned: false,
    }
}

/// `shop.orders`: a primary key, text, decimal, datetime, spatial, float and an unsupported
/// column.
fn orders() -> TableInfo {
    TableInfo {
        database: "shop".into(),
        name: "orders".into(),
        is_view: false,
        row_count: Some(1000),
        columns: vec![
            col("id", "int", int()),
            col(
                "customer",
                "varchar(20)",
                ColumnKind::Text {
                    max_chars: Some(20),
                },
            ),
            col(
                "total",
                "decimal(10,2)",
                ColumnKind::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            col("updated_at", "datetime(6)", ColumnKind::DateTime { fsp: 6 }),
            col("place", "point", ColumnKind::Spatial),
            col("weight", "float", ColumnKind::Float),
            col("vec", "vector(3)", ColumnKind::Unsupported),
        ],
        key: vec!["id".into()],
        key_index: Some("PRIMARY".into()),
    }
}

/// The view `shop.recent` (no key, no row estimate).
fn recent() -> TableInfo {
    TableInfo {
        database: "shop".into(),
        name: "recent".into(),
        is_view: true,
        row_count: None,
        columns: vec![
            col("id", "int", int()),
            col("label", "text", ColumnKind::Text { max_chars: None }),
        ],
        key: vec![],
        key_index: None,
    }
}

fn tables() -> Vec<TableInfo> {
    vec![orders(), recent()]
}

/// Singer catalog JSON for `shop.<table>`: these properties, selected, no method.
fn stream_json(table: &str, props: &[&str]) -> Value {
    let properties: serde_json::Map<String, Value> = props
        .iter()
        .map(|p| (p.to_string(), json!({"type": ["null", "string"]})))
        .collect();
    json!({
        "tap_stream_id": format!("shop-{table}"),
        "table_name": table,
        "stream": format!("shop-{table}"),
        "schema": {"type": "object", "properties": properties},
        "metadata": [
            {"breadcrumb": [], "metadata": {"database-name": "shop", "selected": true}}
        ]
    })
}

/// Every column of `shop.orders` as catalog properties.
const ORDERS: [&str; 7] = [
    "id",
    "customer",
    "total",
    "updated_at",
    "place",
    "weight",
    "vec",
];

/// Sets a stream-level metadata key.
fn set_md(s: &mut Value, key: &str, value: Value) {
    s["metadata"][0]["metadata"][key] = value;
}

/// Adds field metadata for a column.
fn field_md(s: &mut Value, column: &str, md: Value) {
    let entries = s["metadata"].as_array_mut().unwrap();
    entries.push(json!({"breadcrumb": ["properties", column], "metadata": md}));
}

fn with_method(mut s: Value, method: &str) -> Value {
    set_md(&mut s, "replication-method", json!(method));
    s
}

fn stream(v: Value) -> CatalogStream {
    serde_json::from_value(v).unwrap()
}

fn catalog(streams: Vec<Value>) -> Catalog {
    serde_json::from_value(json!({ "streams": streams })).unwrap()
}

fn plans_of(streams: Vec<Value>) -> Result<Plans> {
    plan(Some(&catalog(streams)), &tables(), &TypeOptions::default())
}

/// Plans one stream that must plan alone.
fn plan_one(s: Value) -> Result<StreamPlan> {
    let mut plans = plans_of(vec![s])?;
    assert!(plans.missing_log_based.is_empty());
    assert_eq!(plans.plans.len(), 1);
    Ok(plans.plans.remove(0))
}

/// The message of a usage error.
fn usage<T>(r: Result<T>) -> String {
    match r {
        Err(Error::Usage(m)) => m,
        Err(e) => panic!("not a usage error: {e}"),
        Ok(_) => panic!("a plan, not the expected usage error, came back"),
    }
}

fn names(p: &StreamPlan) -> Vec<&str> {
    p.columns.iter().map(|c| c.name.as_str()).collect()
}

/// The plan's JSON Schema (kept as text).
fn schema(p: &StreamPlan) -> Value {
    serde_json::from_str(p.schema.as_str()).unwrap()
}

fn schema_keys(p: &StreamPlan) -> Vec<String> {
    schema(p)["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[test]
fn without_a_catalog_every_table_is_full_table_with_its_supported_columns() {
    let plans = plan(None, &tables(), &TypeOptions::default()).unwrap();
    assert!(plans.missing_log_based.is_empty());
    let [o, v] = &plans.plans[..] else {
        panic!("two plans expected, got {}", plans.plans.len())
    };
    assert_eq!(o.stream_id, "shop-orders");
    assert_eq!((o.database.as_str(), o.table.as_str()), ("shop", "orders"));
    assert_eq!(o.method, Method::FullTable);
    assert_eq!(
        names(o),
        ["id", "customer", "total", "updated_at", "place", "weight"]
    );
    assert_eq!(
        o.columns
            .iter()
            .map(|c| c.select_expr.as_str())
            .collect::<Vec<_>>(),
        [
            "`id`",
            "`customer`",
            "`total`",
            "`updated_at`",
            "ST_AsGeoJSON(`place`) AS `place`",
            "(`weight` + 0E0) AS `weight`",
        ]
    );
    assert_eq!(
        o.columns.iter().map(|c| c.encoder).collect::<Vec<_>>(),
        [
            Encoder::Number,
            Encoder::Text,
            Encoder::Number,
            Encoder::DateTime,
            Encoder::Json,
            Encoder::Float32,
        ]
    );
    assert_eq!(o.key_properties, ["id"]);
    assert_eq!(o.resume_key, [0]);
    assert_eq!(o.key_index.as_deref(), Some("PRIMARY"));
    assert_eq!(o.replication_key, None);
    assert_eq!(o.replication_key_name(), None);
    assert_eq!(o.row_estimate, Some(1000));
    assert_eq!(
        schema_keys(o),
        ["id", "customer", "total", "updated_at", "place", "weight"]
    );
    let o_schema = schema(o);
    assert_eq!(o_schema["type"], "object");
    assert_eq!(
        o_schema["properties"]["id"],
        json!({"type": ["null", "integer"], "minimum": -2147483648i64, "maximum": 2147483647})
    );
    assert_eq!(
        o_schema["properties"]["updated_at"],
        json!({"type": ["null", "string"], "format": "date-time"})
    );

    assert_eq!(v.stream_id, "shop-recent");
    assert_eq!(v.method, Method::FullTable);
    assert_eq!(names(v), ["id", "label"]);
    assert!(v.key_properties.is_empty());
    assert!(v.resume_key.is_empty(), "no key: not resumable");
    assert_eq!(v.key_index, None);
    assert_eq!(v.row_estimate, None);

    let none = plan(None, &[], &TypeOptions::default()).unwrap();
    assert!(none.plans.is_empty() && none.missing_log_based.is_empty());
}

#[test]
fn stream_selection_follows_metadata_then_legacy_keys_then_default() {
    let base = || {
        let mut s = stream_json("orders", &["id"]);
        s["metadata"][0]["metadata"] = json!({"database-name": "shop"});
        s
    };
    let selected = |f: &dyn Fn(&mut Value)| {
        let mut s = base();
        f(&mut s);
        stream(s).selected
    };
    assert!(!selected(&|_| {}), "nothing says: not selected");
    assert!(selected(&|s| set_md(s, "selected", json!(true))));
    assert!(!selected(&|s| set_md(s, "selected", json!(false))));
    assert!(selected(&|s| set_md(s, "selected-by-default", json!(true))));
    assert!(!selected(&|s| set_md(
        s,
        "selected-by-default",
        json!(false)
    )));
    assert!(
        !selected(&|s| {
            set_md(s, "selected", json!(false));
            set_md(s, "selected-by-default", json!(true));
        }),
        "selected beats selected-by-default"
    );
    assert!(
        selected(&|s| s["selected"] = json!(true)),
        "legacy stream key"
    );
    assert!(
        selected(&|s| s["schema"]["selected"] = json!(true)),
        "legacy schema key"
    );
    assert!(
        !selected(&|s| {
            s["selected"] = json!(false);
            set_md(s, "selected-by-default", json!(true));
        }),
        "legacy selected beats selected-by-default"
    );
    assert!(
        !selected(&|s| {
            set_md(s, "selected", json!(false));
            s["selected"] = json!(true);
            s["schema"]["selected"] = json!(true);
        }),
        "metadata beats the legacy keys"
    );
    assert!(
        !selected(&|s| s["metadata"] = json!([])),
        "no metadata at all"
    );
    assert!(
        !selected(&|s| set_md(s, "selected", json!("yes"))),
        "a non-boolean is ignored"
    );

    // Unselected streams are not planned, even when their table is gone.
    let mut off = stream_json("orders", &ORDERS);
    set_md(&mut off, "selected", json!(false));
    let mut gone = stream_json("gone", &["id"]);
    set_md(&mut gone, "selected", json!(false));
    let plans = plans_of(vec![off, gone]).unwrap();
    assert!(plans.plans.is_empty() && plans.missing_log_based.is_empty());
}

#[test]
fn field_selection_rules() {
    let mut s = stream_json(
        "orders",
        &[
            "customer",
            "total",
            "updated_at",
            "place",
            "weight",
            "x",
            "y",
        ],
    );
    s["schema"]["properties"]["x"]["selected"] = json!(false);
    s["schema"]["properties"]["y"]["selected"] = json!(true);
    field_md(
        &mut s,
        "customer",
        json!({"inclusion": "automatic", "selected": false}),
    );
    field_md(
        &mut s,
        "total",
        json!({"inclusion": "unsupported", "selected": true}),
    );
    field_md(
        &mut s,
        "updated_at",
        json!({"inclusion": "available", "selected": false, "selected-by-default": true}),
    );
    field_md(
        &mut s,
        "place",
        json!({"inclusion": "available", "selected-by-default": true}),
    );
    field_md(&mut s, "weight", json!({"inclusion": "available"}));
    let s = stream(s);
    assert!(column_chosen(&s, "customer", true), "automatic always");
    assert!(!column_chosen(&s, "total", true), "unsupported never");
    assert!(
        !column_chosen(&s, "updated_at", true),
        "selected beats selected-by-default"
    );
    assert!(column_chosen(&s, "place", true), "selected-by-default");
    assert!(
        column_chosen(&s, "weight", true),
        "metadata that says nothing: in the catalog"
    );
    assert!(!column_chosen(&s, "weight", false));
    assert!(
        !column_chosen(&s, "x", true),
        "legacy `selected: false` on the property"
    );
    assert!(column_chosen(&s, "y", true));
    assert!(
        !column_chosen(&s, "z", false),
        "neither metadata nor property"
    );
}

#[test]
fn keys_and_the_replication_key_are_read_even_when_deselected() {
    let mut s = with_method(stream_json("orders", &ORDERS), "INCREMENTAL");
    set_md(&mut s, "replication-key", json!("updated_at"));
    for c in ORDERS.iter().filter(|c| **c != "vec") {
        field_md(&mut s, c, json!({"selected": false}));
    }
    // The catalog claims the unsupported column: it is never read.
    field_md(
        &mut s,
        "vec",
        json!({"inclusion": "available", "selected": true}),
    );
    let cs = stream(s.clone());
    let t = orders();
    assert_eq!(
        selected_columns(
            &cs,
            &t,
            Method::Incremental,
            &["id".to_string()],
            Some("updated_at")
        ),
        ["id", "updated_at"]
    );
    let p = plan_one(s).unwrap();
    assert_eq!(p.method, Method::Incremental);
    assert_eq!(names(&p), ["id", "updated_at"]);
    assert_eq!(p.replication_key, Some(1));
    assert_eq!(p.replication_key_name(), Some("updated_at"));
    assert_eq!(p.resume_key, [0]);

    // A replication-key on a FULL_TABLE stream is not used, but its column is still read.
    let mut s = stream_json("orders", &ORDERS);
    set_md(&mut s, "replication-key", json!("updated_at"));
    field_md(&mut s, "updated_at", json!({"selected": false}));
    field_md(&mut s, "total", json!({"selected": false}));
    let p = plan_one(s).unwrap();
    assert_eq!(p.method, Method::FullTable);
    assert_eq!(p.replication_key, None);
    assert_eq!(
        names(&p),
        ["id", "customer", "updated_at", "place", "weight"]
    );
}

#[test]
fn key_properties_come_from_metadata_else_from_the_table() {
    let mut s = stream_json("orders", &ORDERS);
    set_md(&mut s, "table-key-properties", json!(["customer"]));
    field_md(&mut s, "customer", json!({"selected": false}));
    let p = plan_one(s).unwrap();
    assert_eq!(p.key_properties, ["customer"]);
    assert!(
        names(&p).contains(&"customer"),
        "a key property is automatic"
    );
    assert_eq!(p.resume_key, [0], "resuming uses the table's own key");

    let mut s = stream_json("orders", &ORDERS);
    set_md(&mut s, "table-key-properties", json!([]));
    let p = plan_one(s).unwrap();
    assert!(
        p.key_properties.is_empty(),
        "an explicit empty list is kept"
    );
    assert_eq!(p.resume_key, [0]);

    let p = plan_one(stream_json("orders", &ORDERS)).unwrap();
    assert_eq!(p.key_properties, ["id"]);

    let mut s = stream_json("orders", &ORDERS);
    set_md(&mut s, "table-key-properties", json!("id"));
    assert_eq!(
        plan_one(s).unwrap().key_properties,
        ["id"],
        "not a list: the table key"
    );

    let mut s = stream_json("orders", &ORDERS);
    set_md(&mut s, "table-key-properties", json!(["id", "nope"]));
    assert_eq!(
        usage(plan_one(s)),
        "stream 'shop-orders': key property 'nope' is not a column of the table"
    );
}

#[test]
fn replication_method_from_metadata_or_the_legacy_key() {
    let method = |md: Option<&str>, legacy: Option<&str>| {
        let mut s = stream_json("orders", &["id"]);
        if let Some(m) = md {
            set_md(&mut s, "replication-method", json!(m));
        }
        if let Some(m) = legacy {
            s["replication_method"] = json!(m);
        }
        stream_method(&stream(s))
    };
    assert_eq!(method(None, None).unwrap(), Method::FullTable);
    assert_eq!(method(Some("FULL_TABLE"), None).unwrap(), Method::FullTable);
    assert_eq!(
        method(Some("incremental"), None).unwrap(),
        Method::Incremental
    );
    assert_eq!(method(Some("Log_Based"), None).unwrap(), Method::LogBased);
    assert_eq!(method(None, Some("LOG_BASED")).unwrap(), Method::LogBased);
    assert_eq!(
        method(Some("FULL_TABLE"), Some("LOG_BASED")).unwrap(),
        Method::FullTable,
        "metadata beats the legacy key"
    );
    assert_eq!(
        usage(method(Some("CDC"), None)),
        "stream 'shop-orders': unknown replication-method 'CDC' (use FULL_TABLE, INCREMENTAL or LOG_BASED)"
    );
    assert_eq!(
        usage(method(None, Some("logical"))),
        "stream 'shop-orders': unknown replication-method 'logical' (use FULL_TABLE, INCREMENTAL or LOG_BASED)"
    );
    assert!(matches!(
        plans_of(vec![with_method(stream_json("orders", &ORDERS), "")]),
        Err(Error::Usage(_))
    ));

    for m in [Method::FullTable, Method::Incremental, Method::LogBased] {
        assert_eq!(Method::parse(&m.to_string()), Some(m));
    }
    assert_eq!(Method::LogBased.to_string(), "LOG_BASED");
    assert_eq!(Method::parse("FULL TABLE"), None);
}

#[test]
fn incremental_needs_a_comparable_replication_key() {
    let incremental = |rk: Option<Value>| {
        let mut s = with_method(stream_json("orders", &ORDERS), "INCREMENTAL");
        if let Some(rk) = rk {
            set_md(&mut s, "replication-key", rk);
        }
        plan_one(s)
    };
    let missing =
        "stream 'shop-orders': INCREMENTAL needs a replication-key in the stream metadata";
    assert_eq!(usage(incremental(None)), missing);
    assert_eq!(usage(incremental(Some(json!("")))), missing);
    assert_eq!(usage(incremental(Some(json!(7)))), missing);
    assert_eq!(
        usage(incremental(Some(json!("nope")))),
        "stream 'shop-orders': replication-key 'nope' is not a column of the table"
    );
    assert_eq!(
        usage(incremental(Some(json!("place")))),
        "stream 'shop-orders': replication-key 'place' has type point which cannot be compared reliably"
    );
    assert_eq!(
        usage(incremental(Some(json!("vec")))),
        "stream 'shop-orders': replication-key 'vec' has type vector(3) which cannot be compared reliably"
    );
    let p = incremental(Some(json!("total"))).unwrap();
    assert_eq!(p.replication_key_name(), Some("total"));
    assert_eq!(p.replication_key, Some(2));

    // The legacy top-level key.
    let mut s = with_method(stream_json("orders", &ORDERS), "INCREMENTAL");
    s["replication_key"] = json!("customer");
    assert_eq!(
        plan_one(s).unwrap().replication_key_name(),
        Some("customer")
    );

    // A view can be INCREMENTAL.
    let mut s = with_method(stream_json("recent", &["id", "label"]), "INCREMENTAL");
    set_md(&mut s, "replication-key", json!("id"));
    let p = plan_one(s).unwrap();
    assert_eq!(
        (p.stream_id.as_str(), p.replication_key),
        ("shop-recent", Some(0))
    );

    assert_eq!(
        check_replication_key("x", &recent(), "label").map_err(|e| e.to_string()),
        Err(
            "stream 'x': replication-key 'label' has type text which cannot be compared reliably"
                .to_string()
        )
    );
    assert!(check_replication_key("x", &orders(), "updated_at").is_ok());
}

#[test]
fn log_based_on_a_view_is_refused() {
    let s = with_method(stream_json("recent", &["id", "label"]), "LOG_BASED");
    let msg = usage(plan_one(s));
    assert!(
        msg.starts_with("stream 'shop-recent' is a view: LOG_BASED cannot follow a view"),
        "{msg}"
    );
    assert!(msg.contains("Use FULL_TABLE"), "{msg}");
    assert!(!msg.contains('\n'));
}

#[test]
fn a_missing_table_is_left_to_the_caller_only_for_log_based() {
    let gone = |method: &str| with_method(stream_json("gone", &["id"]), method);
    let plans = plans_of(vec![gone("LOG_BASED"), stream_json("orders", &ORDERS)]).unwrap();
    assert_eq!(plans.missing_log_based, ["shop-gone"]);
    assert_eq!(
        plans
            .plans
            .iter()
            .map(|p| p.stream_id.as_str())
            .collect::<Vec<_>>(),
        ["shop-orders"]
    );
    for method in ["FULL_TABLE", "INCREMENTAL"] {
        assert_eq!(
            usage(plans_of(vec![stream_json("orders", &ORDERS), gone(method)])),
            "stream 'shop-gone' is selected in the catalog but its table does not exist on the server (run --discover again)"
        );
    }
}

#[test]
fn a_catalog_column_gone_from_the_table() {
    let mut props = ORDERS.to_vec();
    props.push("coupon");
    let msg = "stream 'shop-orders': column 'coupon' is in the catalog but not in the table (run --discover again)";
    assert_eq!(usage(plan_one(stream_json("orders", &props))), msg);
    let mut s = with_method(stream_json("orders", &props), "INCREMENTAL");
    set_md(&mut s, "replication-key", json!("id"));
    assert_eq!(usage(plan_one(s)), msg);

    // LOG_BASED: the binlog carries schema changes; the column is just not read.
    let p = plan_one(with_method(stream_json("orders", &props), "LOG_BASED")).unwrap();
    assert_eq!(p.method, Method::LogBased);
    assert_eq!(
        names(&p),
        ["id", "customer", "total", "updated_at", "place", "weight"]
    );
    assert!(check_catalog_columns(
        &stream(stream_json("orders", &props)),
        &orders(),
        Method::LogBased
    )
    .is_ok());

    // `_sdc_` properties are the tap's own, never table columns.
    let mut props = ORDERS.to_vec();
    props.extend(["_sdc_deleted_at", "_sdc_extracted_at"]);
    let p = plan_one(stream_json("orders", &props)).unwrap();
    assert_eq!(names(&p).len(), 6);
    assert!(!schema_keys(&p).iter().any(|k| k == "_sdc_extracted_at"));

    // A schema without properties has nothing to check.
    let mut s = stream_json("orders", &[]);
    s["schema"] = json!({"type": "object"});
    assert!(check_catalog_columns(&stream(s), &orders(), Method::FullTable).is_ok());
}

#[test]
fn log_based_reads_columns_added_since_discovery_when_every_known_column_is_selected() {
    let known = ["id", "customer", "total"];
    let p = plan_one(with_method(stream_json("orders", &known), "LOG_BASED")).unwrap();
    assert_eq!(
        names(&p),
        ["id", "customer", "total", "updated_at", "place", "weight"],
        "new columns in table order; the unsupported one never"
    );
    assert_eq!(
        schema_keys(&p),
        [
            "id",
            "customer",
            "total",
            "updated_at",
            "place",
            "weight",
            "_sdc_deleted_at"
        ]
    );

    let mut s = with_method(stream_json("orders", &known), "LOG_BASED");
    field_md(&mut s, "total", json!({"selected": false}));
    assert_eq!(names(&plan_one(s).unwrap()), ["id", "customer"]);

    let mut s = with_method(stream_json("orders", &known), "LOG_BASED");
    s["schema"]["properties"]["customer"]["selected"] = json!(false);
    assert_eq!(names(&plan_one(s).unwrap()), ["id", "total"]);

    // Other methods read what the catalog lists.
    let p = plan_one(stream_json("orders", &known)).unwrap();
    assert_eq!(names(&p), known);
    assert!(!schema_keys(&p).iter().any(|k| k == "_sdc_deleted_at"));
}

#[test]
fn streams_are_found_by_database_and_table_name_then_by_id() {
    // LOG_BASED: a stream whose table is not found is listed as missing, not an error.
    let found = |s: Value| {
        let plans = plans_of(vec![with_method(s, "LOG_BASED")]).unwrap();
        plans.plans.first().map(|p| p.stream_id.clone())
    };

    let mut renamed = stream_json("orders", &["id"]);
    renamed["tap_stream_id"] = json!("my-orders");
    assert_eq!(found(renamed.clone()).as_deref(), Some("shop-orders"));

    let mut by_stream_id = stream_json("orders", &["id"]);
    by_stream_id.as_object_mut().unwrap().remove("table_name");
    assert_eq!(found(by_stream_id).as_deref(), Some("shop-orders"));

    let mut other_db = stream_json("orders", &["id"]);
    set_md(&mut other_db, "database-name", json!("archive"));
    assert_eq!(
        found(other_db).as_deref(),
        Some("shop-orders"),
        "no archive.orders: falls back to the stream id"
    );

    set_md(&mut renamed, "database-name", json!("archive"));
    assert_eq!(found(renamed), None);

    // The plan is named after the table, not the catalog's id.
    let mut s = stream_json("orders", &ORDERS);
    s["tap_stream_id"] = json!("my-orders");
    assert_eq!(plan_one(s).unwrap().stream_id, "shop-orders");
}

#[test]
fn build_resumes_only_by_a_fully_read_orderable_table_key() {
    let opts = TypeOptions::default();
    let all: Vec<&str> = ORDERS.to_vec();
    let built = |t: &TableInfo, sel: &[&str]| {
        build(t, sel, t.key.clone(), Method::FullTable, None, &opts).unwrap()
    };

    let p = built(&orders(), &["weight", "vec", "id"]);
    assert_eq!(
        names(&p),
        ["id", "weight"],
        "table order; unsupported skipped"
    );
    assert_eq!(p.resume_key, [0]);

    let mut t = orders();
    t.key = vec!["customer".into(), "id".into()];
    assert_eq!(built(&t, &all).resume_key, [1, 0], "in key order");
    assert!(
        built(&t, &["id", "total"]).resume_key.is_empty(),
        "a key column not read"
    );

    for (kind, resumable) in [
        (ColumnKind::Float, false),
        (ColumnKind::Double, false),
        (ColumnKind::Json, false),
        (ColumnKind::Bit { bits: 8 }, false),
        (ColumnKind::Enum { values: vec![] }, false),
        (ColumnKind::Inet6, false),
        (ColumnKind::Binary, true),
        (ColumnKind::Uuid, true),
        (ColumnKind::Date, true),
        (ColumnKind::Time { fsp: 0 }, true),
        (ColumnKind::Year, true),
    ] {
        let mut t = orders();
        t.columns[0].kind = kind.clone();
        assert_eq!(
            !built(&t, &all).resume_key.is_empty(),
            resumable,
            "{kind:?}"
        );
    }

    let mut t = orders();
    t.key.clear();
    assert!(built(&t, &all).resume_key.is_empty());

    let p = build(
        &orders(),
        &all,
        vec![],
        Method::Incremental,
        Some("vec"),
        &opts,
    )
    .unwrap();
    assert_eq!(p.replication_key, None, "a replication key not read");

    let p = build(
        &orders(),
        &all,
        vec![],
        Method::FullTable,
        None,
        &TypeOptions {
            decimal_as_string: true,
            ..TypeOptions::default()
        },
    )
    .unwrap();
    assert_eq!(p.columns[2].encoder, Encoder::DecimalString);
    assert_eq!(
        schema(&p)["properties"]["total"],
        json!({"type": ["null", "string"], "format": "x-singer.decimal", "precision": 10, "scale": 2})
    );
}

#[test]
fn rebuild_is_log_based_with_the_deleted_at_column() {
    let p = rebuild(
        &orders(),
        &["customer", "id"],
        vec!["id".into()],
        &TypeOptions::default(),
    )
    .unwrap();
    assert_eq!(p.method, Method::LogBased);
    assert_eq!(p.replication_key, None);
    assert_eq!(names(&p), ["id", "customer"]);
    assert_eq!(p.key_properties, ["id"]);
    assert_eq!(p.resume_key, [0]);
    assert_eq!(schema_keys(&p), ["id", "customer", "_sdc_deleted_at"]);
    assert_eq!(
        schema(&p)["properties"]["_sdc_deleted_at"],
        json!({"type": ["null", "string"], "format": "date-time"})
    );
}

#[test]
fn invalid_text_stops_the_stream() {
    let p = plan(None, &[orders()], &TypeOptions::default())
        .unwrap()
        .plans
        .remove(0);
    let mut w = vec![ColumnWarnings::default(); p.columns.len()];
    assert!(p.check_text(&w).is_ok());
    w[0].invalid_dates = 3;
    assert!(p.check_text(&w).is_ok(), "only invalid text stops");
    p.report_warnings(&w);
    w[1].invalid_utf8 = 1;
    match p.check_text(&w) {
        Err(Error::Runtime(m)) => assert!(
            m.starts_with(
                "stream 'shop-orders' column 'customer' holds bytes that are not valid text"
            ),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_discovered_catalog_plans_back_to_its_tables() {
    let opts = TypeOptions::default();
    let streams: Vec<_> = tables().iter().map(|t| build_stream(t, &opts)).collect();
    let mut discovered = json!({ "streams": streams });
    let cat: Catalog = serde_json::from_value(discovered.clone()).unwrap();
    assert_eq!((cat.listed, cat.streams.len()), (2, 0));
    let none = plan(Some(&cat), &tables(), &opts).unwrap();
    assert!(none.plans.is_empty(), "discovery selects nothing");

    let md = &mut discovered["streams"][0]["metadata"][0]["metadata"];
    assert_eq!(md["table-key-properties"], json!(["id"]));
    md["selected"] = json!(true);
    let cat: Catalog = serde_json::from_value(discovered).unwrap();
    assert_eq!(cat.streams[0].key_properties, Some(vec!["id".to_string()]));
    let plans = plan(Some(&cat), &tables(), &opts).unwrap();
    let [p] = &plans.plans[..] else {
        panic!("one plan expected")
    };
    assert_eq!(p.method, Method::FullTable);
    assert_eq!(
        names(p),
        ["id", "customer", "total", "updated_at", "place", "weight"]
    );
    let direct = plan(None, &tables(), &opts).unwrap();
    assert_eq!(p.schema, direct.plans[0].schema);
}
