//! Integration tests for softpos-server (filled in below).

fn main() {}
