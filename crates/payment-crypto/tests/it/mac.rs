//! Tests of `mac`.
