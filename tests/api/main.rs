//! The one integration test binary: the real server on a free port, real HTTP.

mod admin_listener;
mod auth_failures;
mod cli;
mod clients;
mod discovery;
mod exchange;
mod health;
mod helpers;
mod jwks;
mod key_lifecycle;
mod keys;
mod keystore_safety;
mod openapi;
mod prometheus;
mod prometheus_files;
mod prometheus_support;
mod redis_denylist;
mod redis_support;
mod revocation;
mod sessions_http;
mod sessions_redis;
mod slow_clients;
mod subject_tokens;
