//! The claim set of an issued token (API.md, "The issued JWT").
//!
//! Serialized straight from borrowed data: building claims allocates only the JSON.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The gateway's inbound request, copied into the `ctx` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RequestContext {
    /// HTTP method, e.g. `GET`.
    #[schema(example = "GET")]
    pub method: String,
    /// Path (and query) the gateway received; at most 2 KiB.
    #[schema(example = "/products/1")]
    pub path: String,
}

/// `act` (RFC 8693 §4.1): the client that asked.
#[derive(Debug, Serialize)]
pub struct Actor<'a> {
    pub sub: &'a str,
}

#[derive(Debug, Serialize)]
pub struct Claims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: &'a str,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub client_id: &'a str,
    pub jti: &'a str,
    pub roles: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<&'a str>,
    pub act: Actor<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<&'a RequestContext>,
    #[serde(flatten)]
    pub extra: &'a Map<String, Value>,
}
