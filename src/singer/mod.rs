//! Singer protocol pieces: time formatting, messages, state.

pub mod messages;
pub mod state;
pub mod time;
