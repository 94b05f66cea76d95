//! xdpscan: a stateless mass port scanner over AF_XDP.
//!
//! The data path, in module order: [`targets`] (what to scan) → [`permute`] (in which order) →
//! [`cookie`] + [`probe`] + [`wire`] (what each probe looks like) → [`io`] (how it leaves and
//! how replies come back) → [`engine`] (threads, rate, dedup, stats) → [`output`].

pub mod app;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod cookie;
pub mod engine;
pub mod inspect;
pub mod io;
pub mod output;
pub mod peer_flags;
pub mod permute;
pub mod probe;
pub mod resume;
pub mod scan;
pub(crate) mod schedulers;
pub mod service;
pub mod targets;
pub mod tool_error;
pub mod wire;
