//! `[token]` and `[jwks]`: the lifetime and shape of issued tokens, and how long
//! verifiers may cache the key set.
//!
//! Invariant: `1 <= ttl_seconds <= max_ttl_seconds <= 86400`; `typ` is a media type;
//! `0 <= reuse_fraction < 1`; `reuse_max_entries >= 1`.

use serde::Deserialize;

use super::{ConfigError, check_range, invalid};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    pub ttl_seconds: u64,
    pub max_ttl_seconds: u64,
    pub clock_skew_seconds: u64,
    pub typ: String,
    pub anonymous_roles: Vec<String>,
    /// A token is handed out again while its age is below this share of its lifetime
    /// (0 = never: every exchange signs).
    pub reuse_fraction: f64,
    /// Tokens kept for reuse per replica.
    pub reuse_max_entries: u64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            ttl_seconds: 600,
            max_ttl_seconds: 3600,
            clock_skew_seconds: 5,
            typ: "at+jwt".into(),
            anonymous_roles: Vec::new(),
            reuse_fraction: 0.5,
            reuse_max_entries: 100_000,
        }
    }
}

impl TokenSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "token.max_ttl_seconds",
            self.max_ttl_seconds,
            1..=86_400,
            "internal tokens should live minutes, not days",
        )?;
        if self.ttl_seconds == 0 || self.ttl_seconds > self.max_ttl_seconds {
            return Err(invalid(
                "token.ttl_seconds",
                format!(
                    "({}) must be between 1 and token.max_ttl_seconds ({})",
                    self.ttl_seconds, self.max_ttl_seconds
                ),
                "lower token.ttl_seconds or raise token.max_ttl_seconds",
            ));
        }
        if self.clock_skew_seconds > 300 {
            return Err(invalid(
                "token.clock_skew_seconds",
                "must be at most 300",
                "a few seconds is enough for clocks kept by NTP",
            ));
        }
        if self.typ.is_empty() || !self.typ.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "token.typ",
                format!("= {:?} is not a media type", self.typ),
                "use \"at+jwt\" (RFC 9068) or \"JWT\" for old verifiers",
            ));
        }
        if !(0.0..1.0).contains(&self.reuse_fraction) {
            return Err(invalid(
                "token.reuse_fraction",
                format!("({}) must be at least 0 and below 1", self.reuse_fraction),
                "0.5 hands a token out again during the first half of its life; 0 turns reuse off",
            ));
        }
        check_range(
            "token.reuse_max_entries",
            self.reuse_max_entries,
            1..=100_000_000,
            "each entry holds one token (about 1 KiB); the default is 100000",
        )?;
        Ok(())
    }

    /// The TTL of a client's tokens: `ttl_seconds`, capped by the client's maximum
    /// (0 = none) and the global one, whichever is lower.
    pub fn ttl_for(&self, client_max_ttl: u64) -> u64 {
        let cap = match client_max_ttl {
            0 => self.max_ttl_seconds,
            n => n.min(self.max_ttl_seconds),
        };
        self.ttl_seconds.min(cap)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwksSettings {
    pub max_age_seconds: u64,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            max_age_seconds: 300,
        }
    }
}

impl JwksSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range(
            "jwks.max_age_seconds",
            self.max_age_seconds,
            1..=86_400,
            "the default is 300",
        )
    }
}
