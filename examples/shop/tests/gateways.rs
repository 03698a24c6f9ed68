//! The shop behind each real gateway — nginx, Caddy, Traefik, Envoy — configured as in
//! `examples/gateways/`, with Tessera's forward authentication as the only authority.
//! Tessera and the shop's services run in this process; the gateway is its real binary
//! (`scripts/ensure-gateways` installs them; a missing binary fails the test, never skips).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::{App, HttpServer};
use base64::Engine as _;
use serde_json::{Value, json};
use tessera_verify::Verifier;

const KEY_A: &str = include_str!("../../../tests/fixtures/rsa-2048-a.pem");
const ADMIN_TOKEN: &str = "gateways-admin-token";
const LOGIN_URL: &str = "https://login.example/login";
/// The example configurations' ports, replaced by free ones.
const DEMO_PORTS: Ports = Ports {
    gateway: 3000,
    tessera: 8080,
    catalog: 3001,
    inventory: 3002,
};

#[derive(Debug, Clone, Copy)]
struct Ports {
    gateway: u16,
    tessera: u16,
    catalog: u16,
    inventory: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gateway {
    Nginx,
    Caddy,
    Traefik,
    Envoy,
}

impl Gateway {
    fn dir(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Caddy => "caddy",
            Self::Traefik => "traefik",
            Self::Envoy => "envoy",
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Caddy => "caddy",
            Self::Traefik => "traefik",
            Self::Envoy => "envoy",
        }
    }

    /// The gateway's command, run in `dir` (which holds its configuration).
    fn command(self, program: &Path, dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(dir);
        match self {
            Self::Nginx => {
                std::fs::create_dir_all(dir.join("tmp")).expect("nginx temp dir");
                c.arg("-p").arg(dir).arg("-c").arg(dir.join("nginx.conf"));
            }
            Self::Caddy => {
                c.args(["run", "--adapter", "caddyfile", "--config"])
                    .arg(dir.join("Caddyfile"))
                    .env("XDG_DATA_HOME", dir.join("data"))
                    .env("XDG_CONFIG_HOME", dir.join("config"));
            }
            Self::Traefik => {
                c.arg("--configFile=traefik.yml");
            }
            Self::Envoy => {
                c.args(["--disable-hot-restart", "--log-level", "warn", "-c"])
                    .arg(dir.join("envoy.yaml"));
            }
        }
        c
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `name` on PATH (or /usr/sbin, where Debian puts nginx); else the test fails saying how
/// to get it.
fn find(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run `eval \"$(scripts/ensure-gateways)\"` first (scripts/test does)")
        })
}

/// The example configuration of `gateway` with the demo ports replaced by `ports`.
fn configure(gateway: Gateway, ports: Ports, into: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../gateways")
        .join(gateway.dir());
    for entry in std::fs::read_dir(&source).expect("examples/gateways/<gateway>") {
        let entry = entry.expect("entry");
        let mut text = std::fs::read_to_string(entry.path()).expect("config file");
        for (demo, port) in [
            (DEMO_PORTS.gateway, ports.gateway),
            (DEMO_PORTS.tessera, ports.tessera),
            (DEMO_PORTS.catalog, ports.catalog),
            (DEMO_PORTS.inventory, ports.inventory),
        ] {
            for (from, to) in [
                (format!("127.0.0.1:{demo}"), format!("127.0.0.1:{port}")),
                (
                    format!("port_value: {demo} "),
                    format!("port_value: {port} "),
                ),
                (format!(":{demo} {{"), format!(":{port} {{")),
            ] {
                text = text.replace(&from, &to);
            }
        }
        std::fs::write(into.join(entry.file_name()), text).expect("write config");
    }
}

async fn serve(
    configure: impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
    port: u16,
) {
    let server = HttpServer::new(move || App::new().configure(configure.clone()))
        .workers(1)
        .bind(("127.0.0.1", port))
        .expect("bind");
    tokio::spawn(server.run());
}

struct Stack {
    gateway: Gateway,
    url: String,
    tessera_url: String,
    tessera: actix_web::dev::ServerHandle,
    child: Child,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tessera (demo configuration, with a login URL), product-catalog, product-inventory and
/// `gateway` on free ports; returns once the gateway answers.
async fn start(gateway: Gateway) -> Stack {
    let program = find(gateway.binary());
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = Ports {
        gateway: free_port(),
        tessera: free_port(),
        catalog: free_port(),
        inventory: free_port(),
    };
    let tessera_url = format!("http://127.0.0.1:{}", ports.tessera);
    let keys = dir.path().join("keys");
    tessera::keys::store::file::import_pem(&keys, KEY_A, 1_700_000_000).expect("key");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/demo.toml");
    let mut s = tessera::config::Settings::load(Some(Path::new(path)), &[]).expect("demo config");
    s.issuer = tessera_url.parse().expect("issuer URL");
    s.server.listen = std::net::SocketAddr::from(([127, 0, 0, 1], ports.tessera));
    s.server.workers = 1;
    s.keys.dir = keys;
    s.keys.rotation_interval_seconds = 0;
    s.log.level = "warn".into();
    s.admin.token_sha256 = Some(tessera::config::Sha256::of_secret(ADMIN_TOKEN));
    if let Some(fa) = s.forward_auth.as_mut() {
        fa.login_url = Some(LOGIN_URL.parse().expect("login URL"));
    }
    let app = tessera::http::Application::build(s).await.expect("tessera");
    let tessera = app.handle();
    tokio::spawn(app.run_until_stopped());

    let catalog = Verifier::builder(&tessera_url, "product-catalog")
        .discover()
        .await
        .expect("discovery");
    let inventory = Verifier::builder(&tessera_url, "product-inventory")
        .discover()
        .await
        .expect("discovery");
    serve(
        move |cfg| tessera_shop::catalog(catalog.clone())(cfg),
        ports.catalog,
    )
    .await;
    serve(
        move |cfg| tessera_shop::inventory(inventory.clone())(cfg),
        ports.inventory,
    )
    .await;

    configure(gateway, ports, dir.path());
    let log = std::fs::File::create(dir.path().join("gateway.log")).expect("log file");
    let child = gateway
        .command(&program, dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{} cannot start: {e}", program.display()));
    let stack = Stack {
        gateway,
        url: format!("http://127.0.0.1:{}", ports.gateway),
        tessera_url,
        tessera,
        child,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        _dir: dir,
    };
    stack.wait_until_ready().await;
    stack
}

impl Stack {
    /// Until the gateway routes an anonymous request through Tessera to the catalog.
    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = self
                .http
                .get(format!("{}/products/1", self.url))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status() == 200) {
                return;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self._dir.path().join("gateway.log"))
                    .unwrap_or_default();
                panic!("{:?} did not start serving in 30 s:\n{log}", self.gateway);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET path` through the gateway with the `session` cookie (if any) and `headers`.
    async fn get(
        &self,
        path: &str,
        session: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self.http.get(format!("{}{path}", self.url));
        if let Some(s) = session {
            request = request.header("cookie", format!("theme=dark; session={s}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_default();
        (
            status,
            headers,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        )
    }

    /// A real token from Tessera for the demo gateway: what a user might have stolen.
    async fn token(&self, session: &str, audience: &str) -> String {
        let answer: Value = self
            .http
            .post(format!("{}/exchange", self.tessera_url))
            .basic_auth("demo-gateway", Some("demo-gateway-secret"))
            .json(&json!({"subject_token": session, "audience": audience}))
            .send()
            .await
            .expect("exchange")
            .json()
            .await
            .expect("json");
        answer["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    async fn revoke_session(&self, session: &str) {
        let response = self
            .http
            .post(format!("{}/admin/revocations", self.tessera_url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"session": session}))
            .send()
            .await
            .expect("revoke");
        assert_eq!(response.status(), 200);
    }
}

/// Every check of the issue, through `gateway`.
async fn the_shop_behind(gateway: Gateway) {
    let shop = start(gateway).await;
    let name = format!("{gateway:?}");

    // Anonymous → catalog, with an anonymous token at the service.
    let (status, _, body) = shop.get("/products/1", None, &[]).await;
    assert_eq!(status, 200, "{name}: anonymous → catalog: {body}");
    assert_eq!(body["viewer"], "anonymous", "{name}");
    assert_eq!(body["via"], "demo-gateway", "{name}");
    // A user → catalog: named; → inventory: 403.
    let (status, _, body) = shop
        .get("/products/1", Some("demo-user-session"), &[])
        .await;
    assert_eq!((status, &body["viewer"]), (200, &json!("user-2")), "{name}");
    let (status, _, body) = shop
        .get("/branches/1/products", Some("demo-user-session"), &[])
        .await;
    assert_eq!(status, 403, "{name}: user → inventory: {body}");
    // The admin → inventory: the service sees sub, roles and act.
    let (status, _, body) = shop
        .get("/branches/1/products", Some("demo-admin-session"), &[])
        .await;
    assert_eq!(status, 200, "{name}: admin → inventory: {body}");
    assert_eq!(body["user"], "user-1", "{name}");
    assert_eq!(body["roles"], json!(["admin"]), "{name}");
    assert_eq!(body["via"], "demo-gateway", "{name}");
    // No session on a login-required route: 401, and a browser goes to the login page.
    let (status, _, _) = shop.get("/branches/1/products", None, &[]).await;
    assert_eq!(status, 401, "{name}: no session → inventory");
    let html = [("accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    let (status, headers, _) = shop.get("/branches/1/products?x=1", None, &html).await;
    assert_eq!(status, 302, "{name}: a browser without a session");
    let location = headers["location"].to_str().expect("location");
    assert!(
        location.starts_with(&format!("{LOGIN_URL}?rd=http%3A%2F%2F"))
            && location.ends_with("%2Fbranches%2F1%2Fproducts%3Fx%3D1"),
        "{name}: {location}"
    );

    // Spoofing: a user's own headers aimed at the admin route change nothing.
    let admin_inventory = shop.token("demo-admin-session", "product-inventory").await;
    let admin_catalog = shop.token("demo-admin-session", "product-catalog").await;
    let wrong_gateway = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("demo-gateway:not-the-secret")
    );
    let spoofed = |authorization: &str| {
        vec![
            ("authorization".to_owned(), authorization.to_owned()),
            ("tessera-authorization".to_owned(), wrong_gateway.clone()),
            ("x-original-uri".to_owned(), "/products/1".to_owned()),
            ("x-original-method".to_owned(), "GET".to_owned()),
            ("x-original-host".to_owned(), "admin.example".to_owned()),
            ("x-forwarded-uri".to_owned(), "/products/1".to_owned()),
            ("x-forwarded-method".to_owned(), "GET".to_owned()),
            ("x-forwarded-host".to_owned(), "admin.example".to_owned()),
            ("host".to_owned(), "admin.example".to_owned()),
        ]
    };
    let with_inventory_token = spoofed(&format!("Bearer {admin_inventory}"));
    let pairs: Vec<(&str, &str)> = with_inventory_token
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let (status, _, body) = shop
        .get("/branches/1/products", Some("demo-user-session"), &pairs)
        .await;
    assert_eq!(status, 403, "{name}: a spoofing user → inventory: {body}");
    let (status, _, body) = shop.get("/branches/1/products", None, &pairs).await;
    assert_eq!(
        status, 401,
        "{name}: an admin token in the user's Authorization is not a session: {body}"
    );
    let with_catalog_token = spoofed(&format!("Bearer {admin_catalog}"));
    let pairs: Vec<(&str, &str)> = with_catalog_token
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let (status, _, body) = shop.get("/products/1", None, &pairs).await;
    assert_eq!(
        status, 200,
        "{name}: a spoofing anonymous user → catalog: {body}"
    );
    assert_eq!(
        body["viewer"], "anonymous",
        "{name}: the catalog saw Tessera's token, not the user's Authorization"
    );

    // A revoked session: 401 on the next request.
    shop.revoke_session("demo-admin-session").await;
    let (status, _, body) = shop
        .get("/branches/1/products", Some("demo-admin-session"), &[])
        .await;
    assert_eq!(status, 401, "{name}: revoked session: {body}");

    // Tessera down: the gateway denies, never lets the request through.
    shop.tessera.stop(true).await;
    for session in [None, Some("demo-user-session")] {
        let (status, _, body) = shop.get("/products/1", session, &[]).await;
        assert!(
            status >= 400 && body.get("product").is_none(),
            "{name}: Tessera down, yet {status}: {body}"
        );
    }
}

#[tokio::test]
async fn the_shop_behind_nginx() {
    the_shop_behind(Gateway::Nginx).await;
}

#[tokio::test]
async fn the_shop_behind_caddy() {
    the_shop_behind(Gateway::Caddy).await;
}

#[tokio::test]
async fn the_shop_behind_traefik() {
    the_shop_behind(Gateway::Traefik).await;
}

#[tokio::test]
async fn the_shop_behind_envoy() {
    the_shop_behind(Gateway::Envoy).await;
}
