//! Singer protocol pieces: time formatting, messages, state.

pub(crate) mod messages;
pub(crate) mod state;
pub(crate) mod time;
