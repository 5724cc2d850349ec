//! webphone-media (skeleton; filled in by issue #2).
