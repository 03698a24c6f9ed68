//! The PostgreSQL keystore, shared by every replica: `tessera_keys` (private keys sealed
//! under the KEK), `tessera_key_events` (audit) and `tessera_keyring_version` (bumped by
//! every change, polled by replicas). Schema from `migrations/`, applied on start.
//!
//! Invariant: plans run in one transaction holding an advisory lock, so only one
//! instance at a time rotates, and a second one sees the first one's key.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection as _, Executor as _, Row as _};

use super::{Applied, Plan, StoredKey, generate};
use crate::infra::clock::UnixTime;
use crate::keys::KeyError;
use crate::keys::kek::{KekRing, Sealed};
use crate::keys::policy::Change;
use crate::keys::record::KeyRecord;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const SELECT_KEYS: &str =
    "SELECT kid, created_at, activates_at, retires_at, kek_id, nonce, ciphertext FROM tessera_keys";

#[derive(Debug, Clone)]
pub struct PgKeyStore {
    pool: PgPool,
    kek: Arc<KekRing>,
    lock_name: String,
}

fn db(e: sqlx::Error) -> KeyError {
    KeyError::Database(match e {
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".into(),
        sqlx::Error::Io(e) => format!("connection failed ({})", e.kind()),
        sqlx::Error::Database(e) => format!("database error {}", e.code().unwrap_or_default()),
        other => other.to_string(),
    })
}

impl PgKeyStore {
    /// Connects, creates the schema if needed and applies the migrations (idempotent).
    pub async fn open(url: &str, schema: &str, kek: Arc<KekRing>) -> Result<Self, KeyError> {
        let options: PgConnectOptions = url.parse().map_err(|_| {
            KeyError::Database("keys.database_url is not a valid postgres URL".into())
        })?;
        // The schema name is validated as [a-z0-9_]+ by the configuration.
        let mut conn = sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(db)?;
        conn.execute(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .await
        .map_err(db)?;
        conn.close().await.map_err(db)?;
        let search_path = format!("SET search_path TO \"{schema}\"");
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    conn.execute(AssertSqlSafe(search_path)).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(db)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| KeyError::Database(format!("migrations failed: {e}")))?;
        Ok(Self {
            pool,
            kek,
            lock_name: format!("tessera-keys:{schema}"),
        })
    }

    /// A transaction holding this keystore's advisory lock until it ends.
    async fn locked_transaction(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, KeyError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(&self.lock_name)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        Ok(tx)
    }

    pub async fn version(&self) -> Result<String, KeyError> {
        let version: i64 = sqlx::query_scalar("SELECT version FROM tessera_keyring_version")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(version.to_string())
    }

    pub async fn load(&self) -> Result<(String, Vec<StoredKey>), KeyError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let version: i64 = sqlx::query_scalar("SELECT version FROM tessera_keyring_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let rows = sqlx::query(SELECT_KEYS)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let keys = rows
            .iter()
            .map(|row| {
                let (record, sealed) = decode(row)?;
                let pkcs8_der = self.kek.open(&record.kid, &sealed)?;
                Ok(StoredKey { record, pkcs8_der })
            })
            .collect::<Result<_, KeyError>>()?;
        Ok((version.to_string(), keys))
    }

    pub async fn apply(
        &self,
        actor: &str,
        now: UnixTime,
        bits: usize,
        plan: Plan,
    ) -> Result<Vec<Applied>, KeyError> {
        let mut tx = self.locked_transaction().await?;
        let rows = sqlx::query(SELECT_KEYS)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let records = rows
            .iter()
            .map(|row| decode(row).map(|(record, _)| record))
            .collect::<Result<Vec<_>, _>>()?;
        let mut applied = Vec::new();
        for change in plan(&records)? {
            match change {
                Change::Generate { activates_at } => {
                    let (record, der) =
                        tokio::task::spawn_blocking(move || generate(bits, now, activates_at))
                            .await
                            .map_err(|e| KeyError::Generation(e.to_string()))??;
                    let sealed = self.kek.seal(&record.kid, &der)?;
                    sqlx::query(
                        "INSERT INTO tessera_keys (kid, created_at, activates_at, retires_at, kek_id, nonce, ciphertext) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&record.kid)
                    .bind(record.created_at)
                    .bind(record.activates_at)
                    .bind(record.retires_at)
                    .bind(&sealed.kek_id)
                    .bind(&sealed.nonce)
                    .bind(&sealed.ciphertext)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                    applied.push(Applied::Generated(record));
                }
                Change::Retire { kid, at } => {
                    sqlx::query("UPDATE tessera_keys SET retires_at = $2 WHERE kid = $1")
                        .bind(&kid)
                        .bind(at)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    applied.push(Applied::Retired { kid, at });
                }
                Change::Remove { kid } => {
                    sqlx::query("DELETE FROM tessera_keys WHERE kid = $1")
                        .bind(&kid)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    applied.push(Applied::Removed { kid });
                }
            }
        }
        for a in &applied {
            record_event(&mut tx, actor, a.action(), a.kid(), now).await?;
        }
        if !applied.is_empty() {
            bump_version(&mut tx).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(applied)
    }

    pub async fn rewrap(&self, actor: &str, now: UnixTime) -> Result<usize, KeyError> {
        let Some(current) = self.kek.current_id().map(str::to_owned) else {
            return Err(KeyError::Generation(
                "keys.encryption_key is not set".into(),
            ));
        };
        let mut tx = self.locked_transaction().await?;
        let rows: Vec<PgRow> = sqlx::query(SELECT_KEYS)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
            .into_iter()
            .filter(|row| {
                row.try_get::<String, _>("kek_id")
                    .is_ok_and(|id| id != current)
            })
            .collect();
        for row in &rows {
            let (record, sealed) = decode(row)?;
            let der = self.kek.open(&record.kid, &sealed)?;
            let resealed = self.kek.seal(&record.kid, &der)?;
            sqlx::query(
                "UPDATE tessera_keys SET kek_id = $2, nonce = $3, ciphertext = $4 WHERE kid = $1",
            )
            .bind(&record.kid)
            .bind(&resealed.kek_id)
            .bind(&resealed.nonce)
            .bind(&resealed.ciphertext)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            record_event(&mut tx, actor, "rewrap", &record.kid, now).await?;
        }
        if !rows.is_empty() {
            bump_version(&mut tx).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(rows.len())
    }

    /// The audit trail, newest first: (at, actor, action, kid).
    pub async fn events(
        &self,
        limit: i64,
    ) -> Result<Vec<(UnixTime, String, String, String)>, KeyError> {
        sqlx::query_as(
            "SELECT at, actor, action, kid FROM tessera_key_events ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }
}

fn decode(row: &PgRow) -> Result<(KeyRecord, Sealed), KeyError> {
    let get = |e: sqlx::Error| db(e);
    let record = KeyRecord {
        kid: row.try_get("kid").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        activates_at: row.try_get("activates_at").map_err(get)?,
        retires_at: row.try_get("retires_at").map_err(get)?,
    };
    let sealed = Sealed {
        kek_id: row.try_get("kek_id").map_err(get)?,
        nonce: row.try_get("nonce").map_err(get)?,
        ciphertext: row.try_get("ciphertext").map_err(get)?,
    };
    Ok((record, sealed))
}

async fn record_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    actor: &str,
    action: &str,
    kid: &str,
    at: UnixTime,
) -> Result<(), KeyError> {
    sqlx::query("INSERT INTO tessera_key_events (at, actor, action, kid) VALUES ($1, $2, $3, $4)")
        .bind(at)
        .bind(actor)
        .bind(action)
        .bind(kid)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

async fn bump_version(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> Result<(), KeyError> {
    sqlx::query("UPDATE tessera_keyring_version SET version = version + 1")
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}
