//! Entry points for the `cargo fuzz` targets in `fuzz/` (and nothing else): each feeds raw
//! bytes to a parser a caller can reach. They must never panic.

use crate::clients::{ClientRegistry, PresentedCredentials};
use crate::http::routes::BodyEncoding;
use crate::http::routes::exchange::ExchangeParams;

/// An `/exchange` body in the JSON (`json = true`) or form encoding.
pub fn exchange_body(data: &[u8], json: bool) {
    let encoding = if json {
        BodyEncoding::Json
    } else {
        BodyEncoding::Form
    };
    let _ = ExchangeParams::parse(encoding, data);
}

/// An `Authorization` header presented for client authentication.
pub fn authorization_header(data: &[u8]) {
    let _ = ClientRegistry::default().authenticate(&PresentedCredentials {
        authorization: Some(data),
        post_id: None,
        post_secret: None,
    });
}

/// A session document (JSON) through the claim mapping of the redis/http backends.
pub fn session_document(data: &[u8]) {
    if let Ok(document) = serde_json::from_slice::<serde_json::Value>(data) {
        let mapping = [
            ("sub", "/user/id"),
            ("roles", "/user/roles"),
            ("email", "/user/email"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let _ = crate::sessions::claims::ClaimMap::from_settings(&mapping)
            .principal(&document, String::new());
    }
}

/// A configuration file (any bytes: the loader must refuse what is not UTF-8 TOML).
pub fn configuration(data: &[u8]) {
    let path = std::env::temp_dir().join(format!("tessera-fuzz-{}.toml", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = crate::config::Settings::load(Some(&path), &[]);
    }
    let _ = std::fs::remove_file(&path);
}
