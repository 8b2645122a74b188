//! Singer protocol pieces: time formatting, messages, state.

pub mod time;
