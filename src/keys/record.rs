//! What the keystore persists about a key besides its private half, and the lifecycle
//! states derived from it. Shared by the pure policy and the keyring snapshot, so neither
//! imports the other's types.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::infra::clock::UnixTime;

/// `pending` (published, not signing) → `active` (the one signer) → `retired` (published
/// until its last token has expired) → removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Pending,
    Active,
    Retired,
}

/// What the keystore persists about a key besides its private half. The state is derived
/// from these timestamps and the clock (see [`super::policy::view`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub kid: String,
    pub created_at: UnixTime,
    /// From when it signs.
    pub activates_at: UnixTime,
    /// When it stops signing, if decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retires_at: Option<UnixTime>,
}
