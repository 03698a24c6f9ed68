//! Verifying our own tokens (for `/introspect` and `/revoke`) with `jsonwebtoken`, the one
//! JOSE parser of the project (tessera-verify uses it too): RS256 only, a published `kid`,
//! our issuer, inside `nbf..exp` by our [`Clock`](crate::infra::clock::Clock).
//!
//! Invariant: every failure is a [`VerifyError`]; callers map them all to "inactive".

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::issue::TokenIssuer;
use crate::infra::clock::UnixTime;
use crate::keys::keyring::Keyring;

/// Why a token is not valid; callers map every variant to "inactive".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("not a JWS in compact form")]
    Malformed,
    #[error("not RS256")]
    WrongAlgorithm,
    #[error("signed by a key that is not published")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("issued by someone else")]
    WrongIssuer,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
}

/// The claims every Tessera token has, plus all of them as a map.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub jti: String,
    pub sub: String,
    pub client_id: String,
    pub sid: Option<String>,
    pub iat: UnixTime,
    /// The real issuance time: `iat` without the backdating (see [`TokenIssuer::issued_at`]).
    pub issued_at: UnixTime,
    pub exp: UnixTime,
    pub claims: Map<String, Value>,
}

/// Signature and issuer are checked by `jsonwebtoken`; time by our clock (tests move it),
/// so its own `exp`/`nbf` checks (which read the system clock) are off.
fn validation(issuer: &str) -> Validation {
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[issuer]);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.leeway = 0;
    v.set_required_spec_claims(&["iss"]);
    v
}

/// Why `jsonwebtoken` could not read the header: an algorithm it does not know (`none`,
/// `NONE`, …) is named as such, anything else is malformed.
fn unparsed_header(jwt: &str) -> VerifyError {
    #[derive(serde::Deserialize)]
    struct Alg {
        #[serde(rename = "alg")]
        _alg: String,
    }
    let named_alg = jwt
        .split('.')
        .next()
        .and_then(|h| {
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, h).ok()
        })
        .and_then(|json| serde_json::from_slice::<Alg>(&json).ok());
    match named_alg {
        Some(_) => VerifyError::WrongAlgorithm,
        None => VerifyError::Malformed,
    }
}

pub fn verify(
    keyring: &Keyring,
    issuer: &TokenIssuer,
    jwt: &str,
    now: UnixTime,
) -> Result<VerifiedToken, VerifyError> {
    let jwt = jwt.trim();
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| unparsed_header(jwt))?;
    if header.alg != Algorithm::RS256 {
        return Err(VerifyError::WrongAlgorithm);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keyring.find(kid))
        .ok_or(VerifyError::UnknownKey)?;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(
        jwt,
        &key.decoding,
        &validation(issuer.issuer()),
    )
    .map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => VerifyError::BadSignature,
        ErrorKind::InvalidIssuer | ErrorKind::MissingRequiredClaim(_) => VerifyError::WrongIssuer,
        ErrorKind::InvalidAlgorithm => VerifyError::WrongAlgorithm,
        _ => VerifyError::Malformed,
    })?
    .claims;
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    let (Some(jti), Some(sub), Some(client_id), Some(iat), Some(exp)) = (
        text("jti"),
        text("sub"),
        text("client_id"),
        number("iat"),
        number("exp"),
    ) else {
        return Err(VerifyError::Malformed);
    };
    if exp <= now {
        return Err(VerifyError::Expired);
    }
    if number("nbf").is_some_and(|nbf| nbf > now) {
        return Err(VerifyError::NotYetValid);
    }
    Ok(VerifiedToken {
        sid: text("sid"),
        issued_at: issuer.issued_at(iat),
        jti,
        sub,
        client_id,
        iat,
        exp,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::TokenRequest;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn sts() -> TokenIssuer {
        TokenIssuer::new("https://sts", 5)
    }

    fn keyring(pem: &str) -> Keyring {
        crate::keys::single_key_keyring(pem, "at+jwt").expect("keyring")
    }

    fn mint(ring: &Keyring, now: i64) -> String {
        let roles = vec!["admin".to_owned()];
        let extra = Map::new();
        TokenIssuer::new("https://sts", 5)
            .issue(
                ring,
                &TokenRequest {
                    sub: "u1",
                    roles: &roles,
                    extra: &extra,
                    sid: Some("s"),
                    client_id: "gw",
                    audience: "a",
                    scope: None,
                    ctx: None,
                    ttl_seconds: 60,
                },
                now,
            )
            .expect("issue")
            .jwt
    }

    #[test]
    fn accepts_our_tokens_inside_their_lifetime() {
        let ring = keyring(include_str!("../../tests/fixtures/rsa-2048-a.pem"));
        let jwt = mint(&ring, 1_000);
        let t = verify(&ring, &sts(), &jwt, 1_000).expect("valid");
        assert_eq!(
            (t.sub.as_str(), t.client_id.as_str(), t.sid.as_deref()),
            ("u1", "gw", Some("s"))
        );
        assert_eq!((t.iat, t.issued_at, t.exp), (995, 1_000, 1_060));
        assert_eq!(
            verify(&ring, &sts(), &jwt, 1_060).err(),
            Some(VerifyError::Expired)
        );
        assert_eq!(
            verify(&ring, &TokenIssuer::new("https://other", 5), &jwt, 1_000).err(),
            Some(VerifyError::WrongIssuer)
        );
    }

    #[test]
    fn refuses_tampering_foreign_keys_and_other_algorithms() {
        let ring = keyring(include_str!("../../tests/fixtures/rsa-2048-a.pem"));
        let other = keyring(include_str!("../../tests/fixtures/rsa-2048-b.pem"));
        let jwt = mint(&ring, 1_000);
        assert_eq!(
            verify(&other, &sts(), &jwt, 1_000).err(),
            Some(VerifyError::UnknownKey)
        );

        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        let mut claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).expect("b64")).expect("json");
        claims["sub"] = Value::from("admin");
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_eq!(
            verify(&ring, &sts(), &parts.join("."), 1_000).err(),
            Some(VerifyError::BadSignature)
        );

        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            parts[1]
        );
        assert_eq!(
            verify(&ring, &sts(), &none, 1_000).err(),
            Some(VerifyError::WrongAlgorithm)
        );
        for garbage in ["", "a.b", "a.b.c.d", "!!!.x.y"] {
            assert_eq!(
                verify(&ring, &sts(), garbage, 1_000).err(),
                Some(VerifyError::Malformed)
            );
        }
    }
}
