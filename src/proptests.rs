//! Hostile input: property tests over every parser a caller reaches — exchange bodies
//! (JSON and form), the Basic header, session JSON through claim mapping, tokens given to
//! introspection — and over configuration files. None may panic; every refusal must be
//! one of the contract's errors.

use proptest::prelude::*;
use serde_json::Value;

use crate::clients::{ClientError, ClientRegistry, PresentedCredentials};
use crate::http::error::ApiError;
use crate::http::routes::BodyEncoding;
use crate::http::routes::exchange::ExchangeParams;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn is_contract_refusal(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::InvalidRequest(_) | ApiError::UnsupportedGrantType
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn exchange_json_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = ExchangeParams::parse(BodyEncoding::Json, &body) {
            prop_assert!(is_contract_refusal(&e), "{e:?}");
        }
    }

    #[test]
    fn exchange_json_shaped_bodies_never_panic(value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap_or_default();
        if let Err(e) = ExchangeParams::parse(BodyEncoding::Json, &body) {
            prop_assert!(is_contract_refusal(&e), "{e:?}");
        }
    }

    #[test]
    fn exchange_form_bodies_never_panic(body in "[a-z_=&%+0-9A-F:.-]{0,300}") {
        if let Err(e) = ExchangeParams::parse(BodyEncoding::Form, body.as_bytes()) {
            prop_assert!(is_contract_refusal(&e), "{e:?}");
        }
    }

    #[test]
    fn basic_headers_never_panic(header in prop::collection::vec(any::<u8>(), 0..200), basic in "(?i:basic) [A-Za-z0-9+/=%:]{0,80}") {
        let registry = ClientRegistry::default();
        for h in [header.as_slice(), basic.as_bytes()] {
            let result = registry.authenticate(&PresentedCredentials { authorization: Some(h), post_id: None, post_secret: None });
            prop_assert!(matches!(result, Err(ClientError::InvalidClient)), "{:?}", result.err());
        }
    }

    #[test]
    fn claim_mapping_never_panics(session in json_value()) {
        let mapping = [("sub", "/user/id"), ("roles", "/user/roles"), ("email", "/user/email"), ("x", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let map = crate::sessions::claims::ClaimMap::from_settings(&mapping);
        let _ = map.principal(&session, String::new());
    }

    #[test]
    fn introspected_garbage_is_inactive_not_a_panic(token in ".{0,300}", parts in prop::collection::vec("[A-Za-z0-9_-]{0,60}", 3)) {
        let ring = crate::keys::single_key_keyring(include_str!("../tests/fixtures/rsa-2048-a.pem"), "at+jwt")
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(crate::tokens::verify(&ring, &crate::tokens::TokenIssuer::new("https://sts", 5), &token, 0).is_err());
        prop_assert!(crate::tokens::verify(&ring, &crate::tokens::TokenIssuer::new("https://sts", 5), &parts.join("."), 0).is_err());
    }

    #[test]
    fn configuration_files_never_panic(text in "[a-z_\\[\\]=\" .0-9\n]{0,200}") {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().map_err(|e| TestCaseError::fail(e.to_string()))?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Err(e) = crate::config::Settings::load(Some(file.path()), &[]) {
            prop_assert!(e.0.starts_with("invalid configuration"), "{e}");
            prop_assert_eq!(e.0.lines().count(), 1, "one line: {}", e);
        }
    }
}
