//! Loading and validation of whole configurations: layering, one-line messages naming
//! the key, typed values.

use std::path::Path;

use secrecy::ExposeSecret as _;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write(contents: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    std::io::Write::write_all(&mut f, contents.as_bytes()).expect("write");
    f
}

/// The error of loading defaults with one environment variable set.
fn env_error(var: &str, value: &str) -> ConfigError {
    Settings::load(None, &env(&[(var, value)])).expect_err("an invalid configuration")
}

/// The error of loading a file of `contents`.
fn file_error(contents: &str) -> ConfigError {
    let f = write(contents);
    Settings::load(Some(f.path()), &[]).expect_err("an invalid configuration")
}

const KEK: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

#[test]
fn defaults_match_the_contract() {
    let s = Settings::load(None, &[]).expect("defaults are valid");
    assert_eq!(s.issuer.as_str(), "http://127.0.0.1:8080");
    assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.server.max_body_bytes, 16384);
    assert_eq!(s.token.ttl_seconds, 600);
    assert_eq!(s.token.typ, "at+jwt");
    assert_eq!(s.keys.store, KeyStoreKind::File);
    assert_eq!(s.keys.publish_lead_seconds, 1800);
    assert_eq!(s.jwks.max_age_seconds, 300);
    assert_eq!(s.denylist.backend, DenylistBackend::Memory);
    assert!(s.clients.is_empty());
}

#[test]
fn environment_overrides_the_file() {
    let f = write("[token]\nttl_seconds = 120\nmax_ttl_seconds = 900\n");
    let s = Settings::load(
        Some(f.path()),
        &env(&[
            ("TESSERA__TOKEN__TTL_SECONDS", "300"),
            ("TESSERA__TOKEN__ANONYMOUS_ROLES", "guest,public"),
            ("TESSERA_CONFIG", "ignored"),
        ]),
    )
    .expect("valid");
    assert_eq!(s.token.ttl_seconds, 300);
    assert_eq!(s.token.max_ttl_seconds, 900);
    assert_eq!(s.token.anonymous_roles, vec!["guest", "public"]);
}

#[test]
fn a_wrong_type_names_the_key() {
    let err = env_error("TESSERA__TOKEN__TTL_SECONDS", "soon");
    assert!(err.0.contains("token.ttl_seconds"), "{err}");
}

#[test]
fn an_unknown_key_is_rejected_by_name() {
    let err = file_error("[token]\nttl_secs = 5\n");
    assert!(err.0.contains("ttl_secs"), "{err}");
}

#[test]
fn ttl_above_the_maximum_is_rejected_with_the_fix() {
    let err = env_error("TESSERA__TOKEN__TTL_SECONDS", "7200");
    assert!(err.0.contains("`token.ttl_seconds`"), "{err}");
    assert!(err.0.contains("raise token.max_ttl_seconds"), "{err}");
    assert_eq!(err.0.lines().count(), 1);
}

#[test]
fn publish_lead_shorter_than_jwks_max_age_is_rejected() {
    let err = env_error("TESSERA__KEYS__PUBLISH_LEAD_SECONDS", "60");
    assert!(err.0.contains("keys.publish_lead_seconds"), "{err}");
}

#[test]
fn clients_are_checked() {
    let err = file_error("[[clients]]\nid = \"gw\"\nsecret_sha256 = \"abc\"\n");
    assert!(err.0.contains("clients[0].secret_sha256"), "{err}");

    let err = file_error(&format!(
        "[[clients]]\nid = \"gw\"\nsecret_sha256 = \"{}\"\nallowed_audiences = [\"a\"]\ndefault_audience = \"b\"\n",
        "0".repeat(64)
    ));
    assert!(err.0.contains("clients[0].default_audience"), "{err}");
}

#[test]
fn a_client_secret_may_be_a_list_of_hashes_each_checked_by_name() {
    let (a, b) = (Sha256::of_secret("old"), Sha256::of_secret("new"));
    let f = write(&format!(
        "[[clients]]\nid = \"gw\"\nsecret_sha256 = [\"{a}\", \"{b}\"]\n"
    ));
    let s = Settings::load(Some(f.path()), &[]).expect("valid");
    assert_eq!(s.clients[0].secret_sha256, vec![a, b]);

    let err = file_error(&format!(
        "[[clients]]\nid = \"a\"\nsecret_sha256 = \"{a}\"\n[[clients]]\nid = \"gw\"\nsecret_sha256 = [\"{a}\", \"nope\"]\n"
    ));
    assert!(err.0.contains("`clients[1].secret_sha256[1]`"), "{err}");
    assert!(err.0.contains("hash-secret"), "{err}");
    assert_eq!(err.0.lines().count(), 1);

    let err = file_error("[[clients]]\nid = \"gw\"\nsecret_sha256 = []\n");
    assert!(
        err.0.contains("`clients[0].secret_sha256` lists no hash"),
        "{err}"
    );
}

#[test]
fn a_client_maximum_above_the_global_one_is_a_warning_and_the_lower_applies() {
    let f = write(&format!(
        "[token]\nttl_seconds = 5\nmax_ttl_seconds = 5\n[[clients]]\nid = \"gw\"\nsecret_sha256 = \"{}\"\nmax_ttl_seconds = 600\n",
        "0".repeat(64)
    ));
    let s = Settings::load(Some(f.path()), &[]).expect("starts");
    assert_eq!(s.ttl_for(s.clients[0].max_ttl_seconds), 5);
    let warnings = s.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .contains("`clients[0].max_ttl_seconds` (600) exceeds token.max_ttl_seconds (5)"),
        "{warnings:?}"
    );
    assert!(Settings::default().warnings().is_empty());
}

#[test]
fn static_sessions_cannot_set_reserved_claims() {
    let err = file_error(
        "[[sessions.static]]\ntoken = \"session-token-1\"\nsub = \"u\"\nclaims = { iss = \"evil\" }\n",
    );
    assert!(err.0.contains("sessions.static[0].claims"), "{err}");
}

#[test]
fn claim_mappings_need_sub_and_roles_and_cannot_touch_reserved_claims() {
    let base = "[sessions]\nbackend = \"redis\"\n[sessions.claims]\n";
    let err = file_error(&format!("{base}roles = \"/r\"\n"));
    assert!(err.0.contains("sessions.claims.sub"), "{err}");
    let err = file_error(&format!(
        "{base}sub = \"/u\"\nroles = \"/r\"\naud = \"/x\"\n"
    ));
    assert!(err.0.contains("sessions.claims.aud"), "{err}");
    let err = file_error(&format!(
        "{base}sub = \"/u\"\nroles = \"/r\"\nactive = \"/x\"\n"
    ));
    assert!(err.0.contains("sessions.claims.active"), "{err}");
    let err = file_error(&format!("{base}sub = \"user.id\"\nroles = \"/r\"\n"));
    assert!(err.0.contains("JSON pointer"), "{err}");
    let f = write(&format!(
        "{base}sub = \"/u\"\nroles = \"/r\"\ntenantId = \"/t\"\n"
    ));
    let s = Settings::load(Some(f.path()), &[]).expect("valid");
    assert!(
        s.sessions.claims.contains_key("tenantId"),
        "claim names keep their case"
    );
}

#[test]
fn http_backend_in_introspection_mode_needs_credentials() {
    let err = file_error(
        "[sessions]\nbackend = \"http\"\n[sessions.http]\nurl = \"http://legacy/introspect\"\n[sessions.claims]\nsub = \"/sub\"\nroles = \"/scope\"\n",
    );
    assert!(err.0.contains("sessions.http.client_id"), "{err}");
}

#[test]
fn the_http_backend_reads_its_secret_file_at_load() {
    let secret = write("legacy-secret\n");
    let f = write(&format!(
        "[sessions]\nbackend = \"http\"\n[sessions.http]\nurl = \"http://legacy/introspect\"\nclient_id = \"tessera\"\nclient_secret_file = \"{}\"\n[sessions.claims]\nsub = \"/sub\"\nroles = \"/scope\"\n",
        secret.path().display()
    ));
    let s = Settings::load(Some(f.path()), &[]).expect("valid");
    assert_eq!(
        s.sessions.http.client_secret.expose_secret(),
        "legacy-secret"
    );
    assert_eq!(
        s.sessions.http.url.as_ref().map(url::Url::as_str),
        Some("http://legacy/introspect")
    );
    let err = Settings::load(
        Some(f.path()),
        &env(&[(
            "TESSERA__SESSIONS__HTTP__CLIENT_SECRET_FILE",
            "/nonexistent",
        )]),
    )
    .expect_err("unreadable");
    assert!(
        err.0.contains("`sessions.http.client_secret_file`"),
        "{err}"
    );
    let err = Settings::load(
        Some(f.path()),
        &env(&[("TESSERA__SESSIONS__HTTP__URL", "ftp://legacy")]),
    )
    .expect_err("not http");
    assert!(
        err.0.contains("`sessions.http.url` is not an http(s) URL"),
        "{err}"
    );
}

#[test]
fn ttl_is_capped_by_client_and_global_maximum() {
    let mut s = Settings::default();
    s.token.ttl_seconds = 900;
    s.token.max_ttl_seconds = 1200;
    assert_eq!(s.ttl_for(0), 900);
    assert_eq!(s.ttl_for(300), 300);
    assert_eq!(s.ttl_for(5000), 900);
}

#[test]
fn values_are_typed_at_load() {
    let s = Settings::load(
        None,
        &env(&[
            ("TESSERA__ISSUER", "https://sts.example.com/"),
            ("TESSERA__SERVER__LISTEN", "0.0.0.0:9000"),
            (
                "TESSERA__ADMIN__TOKEN_SHA256",
                &Sha256::of_secret("t").to_string(),
            ),
            ("TESSERA__DENYLIST__BACKEND", "redis"),
            ("TESSERA__REDIS__CLUSTER", "true"),
            (
                "TESSERA__REDIS__NODES",
                "redis://10.0.0.1:6379,redis://:pw@10.0.0.2:6380",
            ),
            ("TESSERA__KEYS__ENCRYPTION_KEY", KEK),
        ]),
    )
    .expect("valid");
    assert_eq!(s.issuer.as_str(), "https://sts.example.com");
    assert_eq!(s.server.listen.port(), 9000);
    assert_eq!(s.admin.token_sha256, Some(Sha256::of_secret("t")));
    let nodes: Vec<_> = s
        .redis
        .nodes
        .iter()
        .map(|n| n.address().to_owned())
        .collect();
    assert_eq!(nodes, ["10.0.0.1:6379", "10.0.0.2:6380"]);
    let kek = s.keys.encryption_key.as_ref().expect("kek");
    assert_eq!(kek.expose_bytes(), b"0123456789abcdef0123456789abcdef");
}

#[test]
fn bad_typed_values_name_their_key_on_one_line() {
    for (var, value, key) in [
        ("TESSERA__ISSUER", "ftp://sts", "`issuer`"),
        ("TESSERA__SERVER__LISTEN", "localhost", "`server.listen`"),
        (
            "TESSERA__ADMIN__TOKEN_SHA256",
            "abc",
            "`admin.token_sha256`",
        ),
        (
            "TESSERA__REDIS__URL",
            "http://:hunter2@cache",
            "`redis.url`",
        ),
        (
            "TESSERA__SESSIONS__REDIS__URL",
            "cache:6379",
            "`sessions.redis.url`",
        ),
        (
            "TESSERA__KEYS__DATABASE_URL",
            "mysql://db",
            "`keys.database_url`",
        ),
        (
            "TESSERA__KEYS__ENCRYPTION_KEY",
            "c2hvcnQ=",
            "`keys.encryption_key`",
        ),
    ] {
        let err = env_error(var, value);
        assert!(err.0.starts_with("invalid configuration: "), "{err}");
        assert!(err.0.contains(key), "{var}: {err}");
        assert_eq!(err.0.lines().count(), 1, "{err}");
        assert!(!err.0.contains("hunter2"), "{err}");
        assert!(!err.0.contains('\u{1}'), "{err:?}");
    }
    let err = file_error("[redis]\nnodes = [\"redis://a:1\", \"bad\"]\n");
    assert!(err.0.contains("`redis.nodes[1]`"), "{err}");
}

#[test]
fn the_kek_file_is_read_at_load_and_previous_keks_are_typed() {
    let kek_file = write(&format!("{KEK}\n"));
    let f = write(&format!(
        "[keys]\nencryption_key_file = \"{}\"\nprevious_encryption_keys = [\"{KEK}\"]\n",
        kek_file.path().display()
    ));
    let s = Settings::load(Some(f.path()), &[]).expect("valid");
    let current = s.keys.encryption_key.as_ref().expect("read from the file");
    assert_eq!(Some(current), s.keys.previous_encryption_keys.first());
    let err = file_error("[keys]\nprevious_encryption_keys = [\"c2hvcnQ=\"]\n");
    assert!(
        err.0.contains("`keys.previous_encryption_keys[0]`"),
        "{err}"
    );
    let err = file_error("[keys]\nencryption_key_file = \"/nonexistent/kek\"\n");
    assert!(err.0.contains("`keys.encryption_key_file`"), "{err}");
}

#[test]
fn debug_output_never_shows_a_secret() {
    let f = write(&format!(
        "[keys]\nencryption_key = \"{KEK}\"\n[redis]\nurl = \"redis://:hunter2@cache:6379\"\n[sessions.redis]\ncookie_secrets = [\"cookie-secret-1\"]\n[sessions.http]\nclient_secret = \"legacy-secret-1\"\n"
    ));
    let s = Settings::load(Some(f.path()), &[]).expect("valid");
    let debug = format!("{s:?}");
    for secret in [KEK, "hunter2", "cookie-secret-1", "legacy-secret-1"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

#[test]
fn the_loader_path_gets_its_dots_back() {
    assert_eq!(
        key_path("clients[0]secret_sha256"),
        "clients[0].secret_sha256"
    );
    assert_eq!(
        key_path("clients[1]secret_sha256[1]"),
        "clients[1].secret_sha256[1]"
    );
    assert_eq!(key_path("redis.nodes[1]"), "redis.nodes[1]");
    assert_eq!(key_path("a[0][1].b"), "a[0][1].b");
}

#[test]
fn shipped_configurations_are_valid() {
    for file in ["config/demo.toml", "config/example.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        Settings::load(Some(&path), &[]).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

#[test]
fn token_reuse_defaults_and_bounds() {
    let s = Settings::load(None, &[]).expect("defaults are valid");
    assert_eq!(s.token.reuse_fraction, 0.5);
    assert_eq!(s.token.reuse_max_entries, 100_000);
    let f = write("[token]\nreuse_fraction = 0\nreuse_max_entries = 10\n");
    let s = Settings::load(Some(f.path()), &[]).expect("0 turns reuse off");
    assert_eq!(s.token.reuse_fraction, 0.0);
    let s =
        Settings::load(None, &env(&[("TESSERA__TOKEN__REUSE_FRACTION", "0.25")])).expect("valid");
    assert_eq!(s.token.reuse_fraction, 0.25);
    for bad in ["1", "1.5", "-0.1", "NaN"] {
        let err = env_error("TESSERA__TOKEN__REUSE_FRACTION", bad);
        assert!(err.0.contains("`token.reuse_fraction`"), "{bad}: {err}");
        assert_eq!(err.0.lines().count(), 1);
    }
    let err = env_error("TESSERA__TOKEN__REUSE_MAX_ENTRIES", "0");
    assert!(err.0.contains("`token.reuse_max_entries`"), "{err}");
}

/// A valid client `gw` (audiences `a`, `b`; anonymous allowed unless `anonymous` is false)
/// and a `[forward_auth]` section for it, then `extra`.
fn forward_auth_file(anonymous: bool, extra: &str) -> String {
    format!(
        "[[clients]]\nid = \"gw\"\nsecret_sha256 = \"{}\"\nallowed_audiences = [\"a\", \"b\"]\nallow_anonymous = {anonymous}\n[forward_auth]\nclient = \"gw\"\n{extra}",
        Sha256::of_secret("s")
    )
}

#[test]
fn forward_auth_is_optional_and_loads_its_routes_in_order() {
    assert!(
        Settings::load(None, &[])
            .expect("valid")
            .forward_auth
            .is_none()
    );
    let f = write(&forward_auth_file(
        true,
        "login_url = \"https://login.example/\"\n[[forward_auth.routes]]\npath_prefix = \"/branches/\"\naudience = \"b\"\nroles = [\"admin\"]\n[[forward_auth.routes]]\nhost = \"shop.example\"\npath_prefix = \"/\"\naudience = \"a\"\nlogin = \"optional\"\ncontext = true\n",
    ));
    let s = Settings::load(Some(f.path()), &[]).expect("valid");
    let fa = s.forward_auth.expect("configured");
    assert_eq!(fa.session_cookie, "connect.sid");
    assert!(!fa.bearer);
    assert_eq!(
        fa.login_url.expect("url").as_str(),
        "https://login.example/"
    );
    assert_eq!(fa.routes[0].login, Login::Required, "the default");
    assert_eq!(fa.routes[0].roles, vec!["admin".to_owned()]);
    assert_eq!(fa.routes[1].login, Login::Optional);
    assert!(fa.routes[1].context);
}

#[test]
fn forward_auth_is_checked_against_its_client_with_one_line_naming_the_key() {
    let route = |body: &str| format!("[[forward_auth.routes]]\n{body}");
    let cases = [
        (
            forward_auth_file(true, "").replace("client = \"gw\"", "client = \"nobody\""),
            "`forward_auth.client`",
        ),
        (
            forward_auth_file(true, &route("audience = \"a\"\n")),
            "`forward_auth.routes[0].path_prefix` is missing",
        ),
        (
            forward_auth_file(
                true,
                &route("path_prefix = \"branches\"\naudience = \"a\"\n"),
            ),
            "`forward_auth.routes[0].path_prefix`",
        ),
        (
            forward_auth_file(
                true,
                &(route("path_prefix = \"/\"\naudience = \"a\"\n")
                    + &route("path_prefix = \"/\"\naudience = \"billing\"\n")),
            ),
            "`forward_auth.routes[1].audience`",
        ),
        (
            forward_auth_file(true, &route("path_prefix = \"/\"\n")),
            "`forward_auth.routes[0].audience` is missing",
        ),
        (
            forward_auth_file(
                true,
                &route("path_prefix = \"/\"\naudience = \"a\"\nlogin = \"maybe\"\n"),
            ),
            "`forward_auth.routes[0].login`",
        ),
        (
            forward_auth_file(
                false,
                &route("path_prefix = \"/\"\naudience = \"a\"\nlogin = \"optional\"\n"),
            ),
            "`forward_auth.routes[0].login`",
        ),
        (
            forward_auth_file(true, "session_cookie = \"a b\"\n"),
            "`forward_auth.session_cookie`",
        ),
        (
            forward_auth_file(true, "login_url = \"/login\"\n"),
            "`forward_auth.login_url`",
        ),
        (
            forward_auth_file(true, "bearer = true\n"),
            "`forward_auth.bearer`",
        ),
    ];
    for (file, key) in cases {
        let err = file_error(&file);
        assert!(err.0.contains(key), "{key}: {err}");
        assert_eq!(err.0.lines().count(), 1, "{err}");
    }
}

#[test]
fn slow_client_limits_are_bounded_and_named() {
    let s = Settings::default();
    assert_eq!(s.server.body_timeout_ms, 5000);
    assert_eq!(s.server.max_connections, 1024);
    for (var, value, key) in [
        (
            "TESSERA__SERVER__BODY_TIMEOUT_MS",
            "0",
            "`server.body_timeout_ms`",
        ),
        (
            "TESSERA__SERVER__MAX_CONNECTIONS",
            "0",
            "`server.max_connections`",
        ),
    ] {
        let err = env_error(var, value);
        assert!(err.0.contains(key), "{var}: {err}");
        assert_eq!(err.0.lines().count(), 1, "{err}");
    }
}

#[test]
fn trusted_proxies_are_cidrs_or_addresses_and_name_the_x_forwarded_for_caller() {
    let s = Settings::load(
        None,
        &env(&[("TESSERA__SERVER__TRUSTED_PROXIES", "10.0.0.0/8,192.0.2.7")]),
    )
    .expect("valid");
    let ip = |t: &str| t.parse::<std::net::IpAddr>().expect("ip");
    let server = &s.server;
    assert_eq!(
        server.client_address(ip("203.0.113.1"), ["1.2.3.4"].into_iter()),
        ip("203.0.113.1"),
        "an untrusted peer is the caller"
    );
    assert_eq!(
        server.client_address(ip("10.1.1.1"), ["1.2.3.4, 5.6.7.8, 10.2.2.2"].into_iter()),
        ip("5.6.7.8")
    );
    assert_eq!(
        server.client_address(ip("10.1.1.1"), ["1.2.3.4", "5.6.7.8"].into_iter()),
        ip("5.6.7.8"),
        "several headers, in order"
    );
    assert_eq!(
        server.client_address(ip("10.1.1.1"), ["10.3.3.3, 192.0.2.7"].into_iter()),
        ip("10.3.3.3"),
        "all trusted: the left-most"
    );
    assert_eq!(
        server.client_address(ip("10.1.1.1"), ["5.6.7.8, garbage"].into_iter()),
        ip("10.1.1.1"),
        "unparsable: the nearest trusted"
    );
    assert_eq!(
        server.client_address(ip("10.1.1.1"), std::iter::empty()),
        ip("10.1.1.1")
    );
    let err = env_error("TESSERA__SERVER__TRUSTED_PROXIES", "10.0.0.0/33");
    assert!(err.0.contains("`server.trusted_proxies"), "{err}");
    assert_eq!(err.0.lines().count(), 1, "{err}");
}

#[test]
fn admin_listen_is_an_address_or_empty() {
    let s = Settings::load(
        None,
        &env(&[("TESSERA__SERVER__ADMIN_LISTEN", "10.0.0.5:9090")]),
    )
    .expect("valid");
    assert_eq!(
        s.server.admin_listen.map(|a| a.to_string()).as_deref(),
        Some("10.0.0.5:9090")
    );
    let s = Settings::load(None, &env(&[("TESSERA__SERVER__ADMIN_LISTEN", "")])).expect("valid");
    assert_eq!(s.server.admin_listen, None);
    let err = env_error("TESSERA__SERVER__ADMIN_LISTEN", "internal");
    assert!(err.0.contains("`server.admin_listen`"), "{err}");
}

#[test]
fn an_empty_session_key_prefix_is_refused_naming_the_key() {
    let err = file_error(
        "[sessions]\nbackend = \"redis\"\n[sessions.redis]\nkey_prefix = \"\"\n[sessions.claims]\nsub = \"/sub\"\nroles = \"/roles\"\n",
    );
    assert!(err.0.contains("sessions.redis.key_prefix"), "{err}");
    assert_eq!(err.0.lines().count(), 1, "{err}");
}

#[test]
fn telemetry_is_off_by_default_and_its_keys_are_checked_by_name() {
    let settings = Settings::load(None, &[]).expect("defaults");
    assert_eq!(settings.telemetry.otlp_endpoint, "");
    assert_eq!(settings.telemetry.service_name, "tessera");
    assert_eq!(settings.telemetry.sample_ratio, 1.0);
    for (var, value, key) in [
        (
            "TESSERA__TELEMETRY__OTLP_ENDPOINT",
            "collector:4318",
            "`telemetry.otlp_endpoint`",
        ),
        (
            "TESSERA__TELEMETRY__SAMPLE_RATIO",
            "1.5",
            "`telemetry.sample_ratio`",
        ),
        (
            "TESSERA__TELEMETRY__QUEUE_SIZE",
            "1",
            "`telemetry.queue_size`",
        ),
        (
            "TESSERA__TELEMETRY__SERVICE_NAME",
            " ",
            "`telemetry.service_name`",
        ),
    ] {
        let message = env_error(var, value).to_string();
        assert!(message.contains(key), "{message}");
    }
    let on = Settings::load(
        None,
        &env(&[(
            "TESSERA__TELEMETRY__OTLP_ENDPOINT",
            "http://otel-collector:4318",
        )]),
    )
    .expect("valid");
    assert_eq!(on.telemetry.otlp_endpoint, "http://otel-collector:4318");
}
