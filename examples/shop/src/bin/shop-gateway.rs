//! The gateway on $GATEWAY_PORT (default 3000), as the demo gateway client of Tessera.
use actix_web::{App, HttpServer};
use tessera_shop::{Gateway, env};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let gateway = Gateway {
        tessera_url: env("TESSERA_URL", "http://127.0.0.1:8080"),
        client_id: env("TESSERA_CLIENT_ID", "demo-gateway"),
        client_secret: env("TESSERA_CLIENT_SECRET", "demo-gateway-secret"),
        catalog_url: env("CATALOG_URL", "http://127.0.0.1:3001"),
        inventory_url: env("INVENTORY_URL", "http://127.0.0.1:3002"),
        http: reqwest::Client::new(),
    };
    let port: u16 = env("GATEWAY_PORT", "3000").parse()?;
    HttpServer::new(move || App::new().configure(gateway.clone().configure()))
        .bind(("127.0.0.1", port))?
        .run()
        .await?;
    Ok(())
}
