//! The claim set of an issued token (API.md, "The issued JWT"): the shared contract of
//! `crates/tessera-claims`, under the names the server uses.
//!
//! `Claims<'a>` is serialized straight from borrowed data: building claims allocates only
//! the JSON.

pub use tessera_claims::{ActorRef as Actor, ClaimsRef as Claims, RequestContext};
