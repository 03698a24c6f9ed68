//! Internal JWTs: the claim set, how a token is minted from a principal, and how one of
//! ours is verified.

pub mod claims;
pub mod issue;
pub mod verify;

pub use claims::{Actor, Claims, RequestContext};
pub use issue::{IssuedToken, TokenIssuer, TokenRequest};
pub use verify::{VerifiedToken, VerifyError, verify};
