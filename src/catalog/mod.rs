//! Singer catalog: the model a sync reads, type mapping, discovery and the catalog it writes.

pub(crate) mod discover;
pub(crate) mod model;
pub(crate) mod read;
pub(crate) mod types;
pub(crate) mod write;

pub(crate) use model::{Catalog, CatalogStream};
