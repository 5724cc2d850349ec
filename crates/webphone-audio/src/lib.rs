//! webphone-audio (skeleton; filled in by issue #2).
