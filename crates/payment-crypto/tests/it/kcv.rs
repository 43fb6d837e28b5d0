//! Tests of `kcv`.
