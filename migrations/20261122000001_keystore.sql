-- Tessera's PostgreSQL keystore: signing keys (private halves sealed with AES-256-GCM
-- under a key-encryption key), the audit log of key events, and a version counter that
-- replicas poll to notice a change cheaply.
CREATE TABLE IF NOT EXISTS tessera_keys (
    kid          TEXT PRIMARY KEY,
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL,
    retires_at   BIGINT,
    kek_id       TEXT NOT NULL,
    nonce        BYTEA NOT NULL,
    ciphertext   BYTEA NOT NULL
);

CREATE TABLE IF NOT EXISTS tessera_key_events (
    id     BIGSERIAL PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    kid    TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS tessera_keyring_version (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    version   BIGINT NOT NULL
);

INSERT INTO tessera_keyring_version (singleton, version) VALUES (TRUE, 0)
ON CONFLICT (singleton) DO NOTHING;
