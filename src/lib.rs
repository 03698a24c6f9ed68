//! Tessera: a token-exchange service (RFC 8693). Gateways trade session tokens for
//! short-lived RS256 JWTs; services verify them offline against the JWKS.
//!
//! `HTTP → authenticate client → resolve session → sign` — each arrow one module,
//! wired once in [`app`].

pub mod app;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod config;
pub mod denylist;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod metrics;
#[cfg(test)]
mod proptests;
pub mod ratelimit;
pub mod redis_client;
pub mod routes;
pub mod sessions;
pub mod telemetry;
pub mod tokens;
