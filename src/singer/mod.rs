//! Singer protocol pieces: time formatting, messages (the state is `crate::state`).

pub(crate) mod messages;
pub(crate) mod time;
