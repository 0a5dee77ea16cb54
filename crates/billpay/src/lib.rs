//! The `billpay` binary's library: configuration, wiring of the services to their store,
//! processor and clock, the CLI commands, the demo data and the benchmarks. It holds no business
//! rules; it builds the services from configuration and hands them to a channel.

pub mod bench;
pub mod bench_autopay;
pub mod bench_chat;
pub mod bench_ivr;
pub mod cli;
pub mod config;
pub mod demo;
pub mod phone;
pub mod traffic;

pub use cli::{build_from_settings, build_with_clock};
