//! Internal JWTs: the claim set and how a token is minted from a principal.

pub mod claims;
pub mod issue;

pub use claims::{Actor, Claims, RequestContext};
pub use issue::{IssuedToken, TokenIssuer, TokenRequest};
