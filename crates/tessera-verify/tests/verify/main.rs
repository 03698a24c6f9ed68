//! One integration binary: the verifier against JWKS and introspection endpoints the test
//! controls (counting requests, changing keys, going down, hanging), and against a real
//! Tessera (discovery, the actix middleware, introspection). `--features tower` adds the
//! tower layer's tests.

mod against_tessera;
mod claims;
mod common;
mod feed;
mod introspection;
mod key_set;
mod refusals;
#[cfg(feature = "tower")]
mod tower_layer;
