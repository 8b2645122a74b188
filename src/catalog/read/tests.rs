//! The compact catalog reader: what it keeps, what it ignores, how it fails.

use serde_json::{json, Value};

use super::*;

fn meltano_stream(id: &str) -> Value {
    json!({
        "tap_stream_id": id,
        "table_name": "orders",
        "stream": id,
        "schema": {"type": "object", "properties": {"id": {"type": "integer"}, "note": {"type": "string", "selected": false}}},
        "metadata": [
            {"breadcrumb": [], "metadata": {"selected": true, "replication-method": "log_based", "database-name": "shop", "table-key-properties": ["id", 7], "x-custom": {"deep": [1]}}},
            {"breadcrumb": ["properties", "id"], "metadata": {"inclusion": "automatic", "x-custom": [1, 2]}}
        ],
        "replication_method": "INCREMENTAL",
        "replication_key": "id",
        "key_properties": ["id"],
        "x-meltano": {"nested": {"kept": false}}
    })
}

fn read(v: &Value) -> Result<Catalog, String> {
    read_catalog(v.to_string().as_bytes())
}

fn unselected(id: &str) -> Value {
    let mut s = meltano_stream(id);
    s["metadata"][0]["metadata"]["selected"] = json!(false);
    s
}

#[test]
fn only_selected_streams_are_kept_and_unknown_keys_are_ignored() {
    let doc = json!({
        "version": 2,
        "streams": [unselected("shop-a"), meltano_stream("shop-b"), unselected("shop-c")]
    });
    let cat = read(&doc).unwrap();
    assert_eq!(cat.listed, 3);
    let [s] = &cat.streams[..] else {
        panic!("one selected stream expected")
    };
    assert_eq!(s.tap_stream_id, "shop-b");
    assert_eq!(s.table_name.as_deref(), Some("orders"));
    assert!(s.selected);
    assert_eq!(s.replication_method.as_deref(), Some("log_based"));
    assert_eq!(s.replication_key.as_deref(), Some("id"), "the legacy key");
    assert_eq!(s.database_name.as_deref(), Some("shop"));
    assert_eq!(s.key_properties, Some(vec!["id".to_string()]));
    assert_eq!(s.property_names().collect::<Vec<_>>(), ["id", "note"]);
    assert!(s.column("note").is_some_and(|c| !c.schema_selected));
    assert_eq!(
        s.column("id").and_then(|c| c.metadata),
        Some(FieldMetadata {
            inclusion: Inclusion::Automatic,
            ..FieldMetadata::default()
        })
    );
    // LOG_BASED (in any case): the schema is kept as text, as the catalog wrote it.
    let text = s.schema_text.as_deref().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        meltano_stream("x")["schema"]
    );
}

#[test]
fn an_unselected_stream_keeps_only_its_ids() {
    let s: CatalogStream = serde_json::from_value(unselected("shop-a")).unwrap();
    assert!(!s.selected);
    assert_eq!(s.tap_stream_id, "shop-a");
    assert!(s.columns.is_empty() && s.schema_text.is_none() && s.replication_method.is_none());
}

#[test]
fn a_present_metadata_key_hides_the_legacy_one_whatever_its_type() {
    let mut s = meltano_stream("shop-b");
    s["metadata"][0]["metadata"]["replication-method"] = Value::Null;
    s["metadata"][0]["metadata"]["replication-key"] = json!(7);
    let s: CatalogStream = serde_json::from_value(s).unwrap();
    assert_eq!(s.replication_method, None);
    assert_eq!(s.replication_key, None);
    assert!(s.schema_text.is_none(), "not LOG_BASED: no schema kept");

    let mut s = meltano_stream("shop-b");
    s["metadata"].as_array_mut().unwrap().remove(0);
    s["selected"] = json!(true);
    let s: CatalogStream = serde_json::from_value(s).unwrap();
    assert!(s.selected, "the legacy selected");
    assert_eq!(s.replication_method.as_deref(), Some("INCREMENTAL"));
    assert_eq!(s.database_name, None);
    assert_eq!(s.key_properties, None);
}

#[test]
fn field_metadata_columns_first_entry_and_flags() {
    let mut s = meltano_stream("shop-b");
    s["metadata"].as_array_mut().unwrap().extend([
        json!({"breadcrumb": ["properties", "id"], "metadata": {"inclusion": "unsupported"}}),
        json!({"breadcrumb": ["properties", "extra"], "metadata": {"selected": "yes", "selected-by-default": true}}),
        json!({"breadcrumb": ["properties", "note", "items"], "metadata": {"selected": true}}),
        json!({"breadcrumb": ["properties"], "metadata": {"selected": true}}),
        json!({"breadcrumb": ["properties", "note"], "metadata": {"selected": null, "inclusion": 3}}),
    ]);
    let s: CatalogStream = serde_json::from_value(s).unwrap();
    let names: Vec<&str> = s.columns.iter().map(|c| &*c.name).collect();
    assert_eq!(
        names,
        ["id", "note", "extra"],
        "properties, then metadata-only"
    );
    assert_eq!(
        s.column("id").and_then(|c| c.metadata).map(|m| m.inclusion),
        Some(Inclusion::Automatic),
        "the first entry wins"
    );
    let extra = s.column("extra").unwrap();
    assert!(!extra.in_schema && !s.in_schema("extra"));
    assert_eq!(
        extra.metadata,
        Some(FieldMetadata {
            inclusion: Inclusion::Available,
            selected: Flag::Other,
            selected_by_default: Flag::Bool(true),
        })
    );
    let note = s.column("note").and_then(|c| c.metadata).unwrap();
    assert_eq!(
        (note.inclusion, note.selected, note.selected_by_default),
        (Inclusion::Available, Flag::Other, Flag::Absent)
    );
    assert!(s.column("nope").is_none());
}

#[test]
fn a_schema_without_properties_names_no_column() {
    let mut s = meltano_stream("shop-b");
    s["schema"] = json!({"type": "object", "properties": ["id"]});
    s["metadata"].as_array_mut().unwrap().truncate(1);
    let s: CatalogStream = serde_json::from_value(s).unwrap();
    assert!(s.columns.is_empty());
}

#[test]
fn a_malformed_catalog_names_the_stream() {
    let mut bad = meltano_stream("shop-b");
    bad["metadata"] = json!("all");
    let e = read(&json!({"streams": [meltano_stream("shop-a"), bad]})).unwrap_err();
    assert!(
        e.starts_with("stream 'shop-b' (streams[1]): invalid type: string \"all\""),
        "{e}"
    );
    assert_eq!(e.matches(" at line 1 column ").count(), 1, "{e}");

    let e = read(&json!({"streams": [{"tap_stream_id": "a-b"}]})).unwrap_err();
    assert!(
        e.starts_with("stream 'a-b' (streams[0]): missing field `schema`"),
        "{e}"
    );
    let e = read(&json!({"streams": [{"schema": {}}]})).unwrap_err();
    assert!(
        e.starts_with("streams[0]: missing field `tap_stream_id`"),
        "{e}"
    );
    let e = read(&json!({"streams": [{"tap_stream_id": 3, "schema": {}}]})).unwrap_err();
    assert!(
        e.starts_with("streams[0]: invalid type: integer `3`"),
        "{e}"
    );
    let mut bad = meltano_stream("shop-b");
    bad["metadata"][1]["breadcrumb"] = json!("properties");
    let e = read(&json!({"streams": [bad]})).unwrap_err();
    assert!(
        e.starts_with("stream 'shop-b' (streams[0]): invalid type"),
        "{e}"
    );

    let e = read(&json!({})).unwrap_err();
    assert!(e.starts_with("missing field `streams`"), "{e}");
    let e = read_catalog(r#"{"streams": []} x"#.as_bytes()).unwrap_err();
    assert!(e.starts_with("trailing characters"), "{e}");
    let e = read_catalog(r#"{"streams": [{"tap_stream_id": "a-b", "schema": {}} {"#.as_bytes())
        .unwrap_err();
    assert!(
        e.starts_with("expected `,` or `]`"),
        "not blamed on a-b: {e}"
    );
    let empty = read(&json!({"streams": []})).unwrap();
    assert!(empty.streams.is_empty() && empty.listed == 0);
}
