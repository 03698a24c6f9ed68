//! product-inventory on $INVENTORY_PORT (default 3002).
use actix_web::{App, HttpServer};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let verifier = tessera_shop::inventory_verifier_from_env().await?;
    let port: u16 = tessera_shop::env("INVENTORY_PORT", "3002").parse()?;
    HttpServer::new(move || App::new().configure(tessera_shop::inventory(verifier.clone())))
        .bind(("127.0.0.1", port))?
        .run()
        .await?;
    Ok(())
}
