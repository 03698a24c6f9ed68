//! The HTTP front end: the actix server, the shared state, body reading, the one
//! `ApiError` table, the OpenAPI document and the routes. Handlers parse, call one domain
//! service and render; nothing outside this module knows actix.

pub mod error;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod state;
pub mod trace;

pub use server::Application;
pub use state::AppState;
