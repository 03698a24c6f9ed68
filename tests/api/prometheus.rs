//! The shipped dashboard (`deploy/grafana/tessera.json`) and alerts
//! (`deploy/prometheus/alerts.yml`) against a real Prometheus scraping a running Tessera
//! under a little load: every PromQL expression of both must return data, so a renamed
//! metric or label breaks the build, not the operator's dashboard.
//!
//! How an alert is checked: its expression is `<expression> <comparison> <threshold>`
//! (alerts.yml's convention), normally empty. The test evaluates it with every comparison
//! made a `bool` comparison (`x > bool 0.05`), which returns a 0/1 sample for each series
//! the expression compares: non-empty exactly when every metric, label and vector match
//! of the expression has data, whatever the values.

use serde_json::{Value, json};
use tessera::config::{DenylistBackend, Settings};

use crate::helpers::*;
use crate::prometheus_files::{dashboard, dashboard_expressions};
use crate::prometheus_support::*;
use crate::redis_support::*;

/// The series the alerts select exist before any traffic. (The recorder is process-wide,
/// so in this binary other tests' servers feed it too: this checks names, not values;
/// the values are covered by the promtool unit tests.)
#[tokio::test]
async fn the_key_and_backend_series_the_alerts_select_exist_from_start_up() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/metrics")).send().await;
    let text = response.expect("metrics").text().await.expect("body");
    for expected in [
        "tessera_keys{state=\"active\"} ",
        "tessera_keys{state=\"pending\"} ",
        "tessera_keys{state=\"retired\"} ",
        "tessera_keystore_up ",
        "tessera_key_rotation_interval_seconds ",
        "tessera_key_publish_lead_seconds ",
        "tessera_backend_errors_total{backend=\"denylist\"} ",
        "tessera_backend_errors_total{backend=\"static\"} ",
        "# HELP tessera_keystore_up ",
    ] {
        assert!(text.contains(expected), "{expected} missing in:\n{text}");
    }
    app.stop().await;
}

fn observed(s: &mut Settings, redis_url: String) {
    s.denylist.backend = DenylistBackend::Redis;
    s.redis.url = crate::helpers::redis_url(&redis_url);
    s.redis.key_prefix = unique_prefix();
    s.redis.timeout_ms = 200;
    s.clients[1].rate_limit_per_second = 1;
    s.clients[1].rate_limit_burst = 1;
    crate::forward_auth::forward_auth(s);
}

/// `POST /exchange` as `client`; the status.
async fn exchange_as(app: &TestApp, client: &str, secret: &str, body: Value) -> u16 {
    let request = app.http.post(app.url("/exchange"));
    let response = request.basic_auth(client, Some(secret)).json(&body).send();
    response.await.expect("exchange").status().as_u16()
}

/// A little of everything the dashboard shows. With `redis_up`, sessions are exchanged
/// and revoked; without, session exchanges answer 503 (the denylist fails closed).
async fn drive_load(app: &TestApp, redis_up: bool) {
    for _ in 0..3 {
        assert_eq!(app.exchange_json(json!({})).await.status(), 200);
        let status = app
            .exchange_json(json!({"subject_token": ADMIN_SESSION}))
            .await
            .status();
        assert_eq!(status, if redis_up { 200 } else { 503 });
    }
    // Forward authentication: an anonymous visitor on an optional route needs no Redis.
    let forwarded = crate::forward_auth::nginx(app, "/products/1", &[]).await;
    assert_eq!(forwarded.status(), 200);
    let unknown = app
        .exchange_json(json!({"subject_token": "no-such-session"}))
        .await;
    assert_eq!(unknown.status(), if redis_up { 400 } else { 503 });
    let wrong_secret = exchange_as(app, CLIENT_ID, "wrong", json!({})).await;
    assert_eq!(wrong_secret, 401);
    let mut limited = 0;
    for _ in 0..3 {
        let body = json!({"subject_token": USER_SESSION, "audience": "product-inventory"});
        let status = exchange_as(app, STRICT_CLIENT_ID, STRICT_CLIENT_SECRET, body).await;
        limited += usize::from(status == 429);
    }
    assert!(
        limited > 0,
        "the strict client's limit (1/s) refused nothing"
    );
    let jwks = app.http.get(app.url("/.well-known/jwks.json"));
    let etag = jwks.send().await.expect("jwks").headers()["etag"].clone();
    let cached = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("jwks");
    assert_eq!(cached.status(), 304);
    if redis_up {
        let jwt = app.token_for(Some(ADMIN_SESSION)).await;
        let revoke = app.http.post(app.url("/revoke"));
        let revoked = revoke
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("token", jwt.as_str())])
            .send()
            .await
            .expect("revoke");
        assert_eq!(revoked.status(), 200);
        for body in [
            json!({"subject": "user-9"}),
            json!({"session": "gone-session"}),
        ] {
            assert_eq!(app.admin_revoke(body).await.status(), 200);
        }
    }
}

#[tokio::test]
async fn every_dashboard_and_alert_expression_returns_data_from_prometheus_scraping_tessera() {
    ensure_prometheus_installed();
    let mut redis = RedisServer::start();
    let app = spawn_app_with(|s| observed(s, redis.url())).await;
    drive_load(&app, true).await;
    redis.stop();
    drive_load(&app, false).await;

    // Every series exists at the first scrape; a second round of load after it gives the
    // rates something to measure.
    let target = app.address.trim_start_matches("http://");
    let prometheus = Prometheus::start(target, &deploy_path("prometheus/alerts.yml")).await;
    prometheus
        .wait_for("a first scrape", || async {
            prometheus.scrapes().await >= 1
        })
        .await;
    drive_load(&app, false).await;
    let after_load = prometheus.scrapes().await;
    prometheus
        .wait_for("two scrapes after the load", || async {
            prometheus.scrapes().await >= after_load + 2
        })
        .await;

    let mut failures = Vec::new();
    let d = dashboard();
    for variable in d["templating"]["list"].as_array().expect("templating") {
        let Some(query) = variable["query"].as_str() else {
            continue;
        };
        let Some(args) = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
        else {
            continue; // the data source variable
        };
        let (selector, label) = args
            .rsplit_once(',')
            .expect("label_values(selector, label)");
        let selector = substitute_variables(selector.trim(), "tessera");
        let path = format!("label/{}/values", label.trim());
        let values = prometheus.api(&path, &[("match[]", &selector)]).await;
        if values["data"].as_array().is_none_or(Vec::is_empty) {
            failures.push(format!(
                "variable {}: {query}: no values ({values})",
                variable["name"]
            ));
        }
    }

    let mut checks: Vec<(String, String, bool)> = dashboard_expressions(&d)
        .into_iter()
        .map(|(place, expr)| (place, substitute_variables(&expr, "tessera"), true))
        .collect();
    let rules = prometheus.api("rules", &[]).await;
    let groups = rules["data"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let rules: Vec<Value> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(rules.len() >= 10, "Prometheus loaded the rules: {rules:?}");
    for rule in &rules {
        let query = rule["query"].as_str().expect("query");
        checks.push((
            format!("alert {}", rule["name"]),
            with_bool_comparisons(query),
            false,
        ));
    }
    for (place, expr, needs_a_number) in &checks {
        match prometheus.query(expr).await {
            Err(error) => failures.push(format!("{place}: {expr}\n    error: {error}")),
            Ok(samples) if samples.is_empty() => {
                failures.push(format!("{place}: {expr}\n    returned no data"))
            }
            Ok(samples) if *needs_a_number && !samples.iter().any(is_finite) => failures.push(
                format!("{place}: {expr}\n    returned only NaN: {samples:?}"),
            ),
            Ok(_) => {}
        }
    }
    // Rules evaluate every second; each must have evaluated without error.
    let unhealthy: Vec<String> = rules
        .iter()
        .filter(|r| r["health"] == "err")
        .map(|r| format!("alert {} fails to evaluate: {}", r["name"], r["lastError"]))
        .collect();
    failures.extend(unhealthy);

    assert!(
        failures.is_empty(),
        "{} of {} checks failed:\n{}",
        failures.len(),
        checks.len(),
        failures.join("\n")
    );
    app.stop().await;
}
