//! The fleet simulator behind `softpos-terminal fleet`: many virtual terminals, each with its own
//! in-memory secure store and keys, set up against a real server (register, approved through the
//! admin API, key injection, health report) and then paying at a paced rate with a mix of cards
//! and scenarios, a share of them compromised (hooked and rooted health signals) that must end
//! `SUSPENDED`. It measures throughput, latency per step and errors by code.
//!
//! Modules: [`orchestrate`] (one run from log-in to summary), [`device`] (one virtual
//! terminal), [`cards`] (the virtual cards, personalised once per run), [`enrol`] (registration from a per-device address), [`admin`] (the operator's admin API calls), [`pace`] (open-loop rate control),
//! [`runner`] (the paced payment phase), [`mix`] (scenarios and their expected results), [`stats`] (latency samples, counts),
//! [`live`] (progress counters), [`limits`] (loopback only, bounded size), [`summary`] (the
//! report), [`server`] (a local `softpos-server` process for tests and benchmarks).

pub mod admin;
pub mod cards;
pub mod device;
pub mod enrol;
pub mod limits;
pub mod live;
pub mod mix;
pub mod orchestrate;
pub mod pace;
pub mod runner;
pub mod server;
pub mod stats;
pub mod summary;

pub use orchestrate::{FleetConfig, run};
