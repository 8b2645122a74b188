//! Singer STATE: the state document and the bookmarks in it.

mod document;

pub use document::State;
