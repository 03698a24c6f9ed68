//! Verifying our own tokens (for `/introspect` and `/revoke`): RS256 only, a published
//! `kid`, our issuer, inside `nbf..exp`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

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

#[derive(Deserialize)]
struct Header<'a> {
    alg: &'a str,
    kid: Option<&'a str>,
}

/// The claims every Tessera token has, plus all of them as a map.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub jti: String,
    pub sub: String,
    pub client_id: String,
    pub sid: Option<String>,
    pub iat: UnixTime,
    pub exp: UnixTime,
    pub claims: Map<String, Value>,
}

pub fn verify(
    keyring: &Keyring,
    issuer: &str,
    jwt: &str,
    now: UnixTime,
) -> Result<VerifiedToken, VerifyError> {
    let mut parts = jwt.trim().split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| VerifyError::Malformed)
    };
    let header_json = decode(h)?;
    let header: Header<'_> =
        serde_json::from_slice(&header_json).map_err(|_| VerifyError::Malformed)?;
    if header.alg != "RS256" {
        return Err(VerifyError::WrongAlgorithm);
    }
    let key = header
        .kid
        .and_then(|kid| keyring.find(kid))
        .ok_or(VerifyError::UnknownKey)?;
    let signing_input = &jwt.trim()[..h.len() + 1 + p.len()];
    if !key.signer.verify(signing_input.as_bytes(), &decode(s)?) {
        return Err(VerifyError::BadSignature);
    }
    let claims: Map<String, Value> =
        serde_json::from_slice(&decode(p)?).map_err(|_| VerifyError::Malformed)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    if text("iss").as_deref() != Some(issuer) {
        return Err(VerifyError::WrongIssuer);
    }
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
    use crate::tokens::{TokenIssuer, TokenRequest};

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
        let t = verify(&ring, "https://sts", &jwt, 1_000).expect("valid");
        assert_eq!(
            (t.sub.as_str(), t.client_id.as_str(), t.sid.as_deref()),
            ("u1", "gw", Some("s"))
        );
        assert_eq!((t.iat, t.exp), (995, 1_060));
        assert_eq!(
            verify(&ring, "https://sts", &jwt, 1_060).err(),
            Some(VerifyError::Expired)
        );
        assert_eq!(
            verify(&ring, "https://other", &jwt, 1_000).err(),
            Some(VerifyError::WrongIssuer)
        );
    }

    #[test]
    fn refuses_tampering_foreign_keys_and_other_algorithms() {
        let ring = keyring(include_str!("../../tests/fixtures/rsa-2048-a.pem"));
        let other = keyring(include_str!("../../tests/fixtures/rsa-2048-b.pem"));
        let jwt = mint(&ring, 1_000);
        assert_eq!(
            verify(&other, "https://sts", &jwt, 1_000).err(),
            Some(VerifyError::UnknownKey)
        );

        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        let mut claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).expect("b64")).expect("json");
        claims["sub"] = Value::from("admin");
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_eq!(
            verify(&ring, "https://sts", &parts.join("."), 1_000).err(),
            Some(VerifyError::BadSignature)
        );

        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            parts[1]
        );
        assert_eq!(
            verify(&ring, "https://sts", &none, 1_000).err(),
            Some(VerifyError::WrongAlgorithm)
        );
        for garbage in ["", "a.b", "a.b.c.d", "!!!.x.y"] {
            assert_eq!(
                verify(&ring, "https://sts", garbage, 1_000).err(),
                Some(VerifyError::Malformed)
            );
        }
    }
}
