//! Singer catalog: the model, type mapping and discovery.

pub mod discover;
pub mod model;
pub mod types;

pub use model::{Catalog, CatalogStream, MetadataEntry};
