//! Infrastructure: database pools and migrations, Redis, shared-state stores, keys, TLS,
//! telemetry. Nothing here knows about HTTP handlers or business rules.

pub mod db;
pub mod ecdsa;
pub mod keys;
pub mod stores;
pub mod telemetry;
pub mod tls;
pub mod write_queue;
