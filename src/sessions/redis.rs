//! The `redis` backend: reads an express-session / connect-redis store, read-only.
//!
//! Accepts the raw sid and, with `cookie_secrets`, the signed cookie value
//! `s:<sid>.<signature>` (cookie-signature: HMAC-SHA256, base64 without padding), also
//! URL-encoded (`s%3A…`). Every exchange reads the store, so a logout takes effect at once.

use std::borrow::Cow;
use std::sync::Arc;

use arc_swap::ArcSwap;
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use percent_encoding::percent_decode_str;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::claims::ClaimMap;
use super::{Principal, SessionError, sid_of_canonical};
use crate::infra::clock::UnixTime;
use crate::infra::redis::RedisClient;

/// Longest sid we look up (express's are 32 characters).
const MAX_SID_LEN: usize = 512;

#[derive(Debug)]
pub struct RedisSessions {
    client: RedisClient,
    key_prefix: String,
    secrets: Vec<hmac::Key>,
    /// Replaced by a configuration reload.
    claims: ArcSwap<ClaimMap>,
}

impl RedisSessions {
    pub fn new(
        client: RedisClient,
        key_prefix: &str,
        secrets: &[SecretString],
        claims: ClaimMap,
    ) -> Self {
        Self {
            client,
            key_prefix: key_prefix.to_owned(),
            secrets: secrets
                .iter()
                .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s.expose_secret().as_bytes()))
                .collect(),
            claims: ArcSwap::from_pointee(claims),
        }
    }

    /// Maps the sessions resolved from now on with `claims`.
    pub fn set_claims(&self, claims: ClaimMap) {
        self.claims.store(Arc::new(claims));
    }

    pub fn client(&self) -> &RedisClient {
        &self.client
    }

    /// The sid a token names, its signature verified when it is a signed cookie value.
    fn verified_sid<'t>(&self, token: &'t str) -> Option<Cow<'t, str>> {
        let value = url_decoded(token);
        let sid = match value.strip_prefix("s:") {
            None => value.clone(),
            Some(signed) => {
                let (sid, signature) = signed.rsplit_once('.')?;
                let valid = self.secrets.iter().any(|key| {
                    let expected = STANDARD_NO_PAD.encode(hmac::sign(key, sid.as_bytes()));
                    bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
                });
                if !valid {
                    return None;
                }
                Cow::Owned(sid.to_owned())
            }
        };
        (!sid.is_empty() && sid.len() <= MAX_SID_LEN).then_some(sid)
    }

    pub async fn resolve(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<Arc<Principal>, SessionError> {
        let sid = self.verified_sid(token).ok_or(SessionError::Rejected)?;
        let mut cmd = redis::cmd("GET");
        cmd.arg(format!("{}{sid}", self.key_prefix));
        let stored: Option<String> = self.client.query(cmd).await.map_err(|e| {
            SessionError::unavailable("the session store cannot answer", Some(Arc::new(e)))
        })?;
        let stored = stored.ok_or(SessionError::Rejected)?;
        let session: Value = serde_json::from_str(&stored).map_err(|_| {
            tracing::warn!(
                "a session in the store is not JSON; is the store written by connect-redis?"
            );
            SessionError::Rejected
        })?;
        if expired(&session, now) {
            return Err(SessionError::Rejected);
        }
        Ok(Arc::new(
            self.claims
                .load()
                .principal(&session, sid_of_canonical(&sid))?,
        ))
    }
}

/// The canonical session id of a token: the sid itself, whatever form it came in.
pub fn canonical_sid(token: &str) -> Cow<'_, str> {
    let value = url_decoded(token);
    match value.strip_prefix("s:").and_then(|s| s.rsplit_once('.')) {
        Some((sid, _)) => Cow::Owned(sid.to_owned()),
        None => value,
    }
}

pub(super) fn url_decoded(token: &str) -> Cow<'_, str> {
    if token.contains('%') {
        percent_decode_str(token)
            .decode_utf8()
            .map_or(Cow::Borrowed(token), |d| Cow::Owned(d.into_owned()))
    } else {
        Cow::Borrowed(token)
    }
}

/// express-session's own expiry: `cookie.expires` (an ISO 8601 date), when set.
fn expired(session: &Value, now: UnixTime) -> bool {
    session
        .pointer("/cookie/expires")
        .and_then(Value::as_str)
        .and_then(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        })
        .is_some_and(|expires| expires.unix_timestamp() <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed in node exactly as cookie-signature's sign(sid, 'keyboard cat') does.
    const SID: &str = "Qx8Yl2xA1mDdOqRZ2ZJkz9hP0JpVnzJc";
    const SIGNED: &str =
        "s:Qx8Yl2xA1mDdOqRZ2ZJkz9hP0JpVnzJc.tCu4B5gim2dCDltuvqlZkI4BUgzT/peXh8jHYQOxJ8U";

    #[test]
    fn canonical_sid_is_the_sid_in_every_form() {
        let encoded = SIGNED
            .replace(':', "%3A")
            .replace('/', "%2F")
            .replace('+', "%2B");
        for form in [SID, SIGNED, encoded.as_str()] {
            assert_eq!(canonical_sid(form), SID, "{form}");
        }
    }

    fn sessions(secrets: &[&str]) -> RedisSessions {
        let client = RedisClient::single(
            &"redis://127.0.0.1:1".parse().expect("url"),
            std::time::Duration::from_millis(50),
            None,
        )
        .expect("client");
        let secrets: Vec<SecretString> = secrets.iter().map(|s| (*s).into()).collect();
        RedisSessions::new(
            client,
            "sess:",
            &secrets,
            ClaimMap::from_settings(&Default::default()),
        )
    }

    #[test]
    fn signed_values_verify_against_any_secret_and_raw_sids_pass() {
        let rotated = sessions(&["new secret", "keyboard cat"]);
        assert_eq!(rotated.verified_sid(SIGNED).as_deref(), Some(SID));
        let encoded = SIGNED
            .replace(':', "%3A")
            .replace('/', "%2F")
            .replace('+', "%2B");
        assert_eq!(rotated.verified_sid(&encoded).as_deref(), Some(SID));
        assert_eq!(rotated.verified_sid(SID).as_deref(), Some(SID));

        let wrong = sessions(&["another secret"]);
        assert_eq!(wrong.verified_sid(SIGNED), None);
        assert_eq!(
            sessions(&[]).verified_sid(SIGNED),
            None,
            "no secret: signed values refused"
        );
        let tampered = SIGNED.replace("Qx8Y", "Qx8Z");
        assert_eq!(rotated.verified_sid(&tampered), None);
        assert_eq!(rotated.verified_sid("s:no-signature"), None);
    }

    #[test]
    fn expiry_follows_cookie_expires() {
        let s = serde_json::json!({"cookie": {"expires": "2026-01-01T00:00:00.000Z"}});
        let at = time::macros::datetime!(2026-01-01 00:00 UTC).unix_timestamp();
        assert!(expired(&s, at));
        assert!(!expired(&s, at - 1));
        assert!(!expired(
            &serde_json::json!({"cookie": {"expires": null}}),
            at
        ));
    }
}
