//! Singer catalog: the model, type mapping and discovery.

pub(crate) mod discover;
pub(crate) mod model;
pub(crate) mod types;

pub(crate) use model::{Catalog, CatalogStream};
