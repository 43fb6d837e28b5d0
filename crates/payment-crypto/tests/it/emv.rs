//! Tests of `emv`.
