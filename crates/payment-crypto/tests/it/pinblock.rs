//! Tests of `pinblock`.
