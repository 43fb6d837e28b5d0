//! Tests of `tr31`.
