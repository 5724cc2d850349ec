//! webphone-engine (skeleton; filled in by issue #2).
