//! Tessera: a token-exchange service (RFC 8693). Gateways trade session tokens for
//! short-lived RS256 JWTs; services verify them offline against the JWKS.
//!
//! `http` (parse, render) → domain (`exchange`, `clients`, `sessions`, `denylist`,
//! `tokens`, `keys`) → `infra` / `config`. Each arrow is one module, wired once in
//! [`http::server`]; nothing below `http` knows the web framework, and `config` imports
//! nothing else.

pub mod cli;
pub mod clients;
pub mod config;
pub mod denylist;
pub mod exchange;
pub mod feed;
pub mod forward_auth;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod infra;
pub mod keys;
#[cfg(test)]
mod proptests;
pub mod readiness;
pub mod reload;
pub mod revocation;
pub mod sessions;
pub mod tokens;
