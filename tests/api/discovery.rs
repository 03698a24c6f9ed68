//! RFC 8414 / OpenID discovery.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn both_discovery_documents_describe_the_server() {
    let app = spawn_app_with(|s| s.issuer = "https://sts.example.com/".parse().expect("url")).await;
    let mut docs = Vec::new();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let response = app.http.get(app.url(path)).send().await.expect("discovery");
        assert_eq!(response.status(), 200);
        docs.push(response.json::<Value>().await.expect("json"));
    }
    assert_eq!(docs[0], docs[1]);
    let d = &docs[0];
    assert_eq!(d["issuer"], "https://sts.example.com");
    assert_eq!(
        d["jwks_uri"],
        "https://sts.example.com/.well-known/jwks.json"
    );
    assert_eq!(d["token_endpoint"], "https://sts.example.com/oauth2/token");
    assert_eq!(
        d["introspection_endpoint"],
        "https://sts.example.com/introspect"
    );
    assert_eq!(d["revocation_endpoint"], "https://sts.example.com/revoke");
    assert_eq!(
        d["grant_types_supported"],
        serde_json::json!(["urn:ietf:params:oauth:grant-type:token-exchange"])
    );
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
}

#[tokio::test]
async fn tokens_carry_the_issuer_that_discovery_announces() {
    let app = spawn_app_with(|s| s.issuer = "https://sts.example.com".parse().expect("url")).await;
    let jwt = app.token_for(Some(USER_SESSION)).await;
    let claims = app.verify(&jwt, "product-catalog").await;
    assert_eq!(claims["iss"], "https://sts.example.com");
}
