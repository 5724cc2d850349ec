//! webphone-sip (skeleton; filled in by issue #2).
