//! The Singer catalog as a sync reads it: only what planning and the run use, typed and compact.
//!
//! The catalog file is never held as JSON: `catalog::read` converts each stream as it is parsed
//! and keeps only the selected ones. A selected stream keeps its ids, the stream-level metadata
//! the planner reads (metadata first, then Meltano's legacy top-level keys), the names of its
//! schema's properties with their field selection, and, for LOG_BASED streams only, its schema
//! as text (re-sent when the table is gone).

/// The selected streams of a Singer catalog, in catalog order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Catalog {
    /// The selected streams.
    pub streams: Vec<CatalogStream>,
    /// How many streams the catalog lists, selected or not.
    pub listed: usize,
}

/// One stream (table or view) of a catalog.
#[derive(Clone, Debug, Default)]
pub(crate) struct CatalogStream {
    /// `<database>-<table>`.
    pub tap_stream_id: String,
    /// The table's own name.
    pub table_name: Option<String>,
    /// The stream is selected: metadata `selected`, else the legacy stream or schema
    /// `selected`, else metadata `selected-by-default` (booleans only).
    pub selected: bool,
    /// `replication-method` from the metadata, else the legacy `replication_method`.
    pub replication_method: Option<String>,
    /// `replication-key` from the metadata, else the legacy `replication_key`.
    pub replication_key: Option<String>,
    /// Metadata `database-name`.
    pub database_name: Option<String>,
    /// Metadata `table-key-properties`, when it is an array (its strings).
    pub key_properties: Option<Vec<String>>,
    /// The schema's properties in order, then columns that only have field metadata.
    pub columns: Vec<CatalogColumn>,
    /// The schema as JSON text, kept for selected LOG_BASED streams only.
    pub schema_text: Option<Box<str>>,
}

/// A column the catalog names, in the schema's properties or in field metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CatalogColumn {
    /// Column name.
    pub name: Box<str>,
    /// Listed in the schema's `properties`.
    pub in_schema: bool,
    /// The property's legacy `selected` (true when absent or not a boolean).
    pub schema_selected: bool,
    /// Its field metadata (the first entry at `["properties", name]`), if any.
    pub metadata: Option<FieldMetadata>,
}

/// Field metadata that selection reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldMetadata {
    /// `inclusion`.
    pub inclusion: Inclusion,
    /// `selected`.
    pub selected: Flag,
    /// `selected-by-default`.
    pub selected_by_default: Flag,
}

/// A field's `inclusion`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Inclusion {
    /// `automatic`: always read.
    Automatic,
    /// `unsupported`: never read.
    Unsupported,
    /// Anything else (`available`, absent, not a string).
    #[default]
    Available,
}

/// A metadata key read as a boolean, telling an absent key from one with another type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Flag {
    /// The key is not there.
    #[default]
    Absent,
    /// A boolean.
    Bool(bool),
    /// Present, but not a boolean (null, a string, ...).
    Other,
}

impl CatalogStream {
    /// The column the catalog names `name`, if any.
    pub(crate) fn column(&self, name: &str) -> Option<&CatalogColumn> {
        self.columns.iter().find(|c| &*c.name == name)
    }

    /// Whether the schema's properties list `name`.
    pub(crate) fn in_schema(&self, name: &str) -> bool {
        self.column(name).is_some_and(|c| c.in_schema)
    }

    /// The names of the schema's properties, in order.
    pub(crate) fn property_names(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .filter(|c| c.in_schema)
            .map(|c| &*c.name)
    }
}
