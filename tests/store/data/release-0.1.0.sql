-- A database written by ampgate 0.1.0 as released (schema version 3, before the repositories), dumped
-- with sqlite3 .iterdump(): tests/store/test_schema.py opens it with the current code.
BEGIN TRANSACTION;
CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        label TEXT NULL,
        created_at TEXT NOT NULL
    );
INSERT INTO "api_tokens" VALUES(1,'3999cd325f85e5ed47a3b45b1771490181a2f451ba2a10bee6e0e939976f151d','viewer','grafana','2026-11-01T08:00:00.000Z');
CREATE TABLE chargers (
        id TEXT PRIMARY KEY,
        password_hash TEXT NULL,
        vendor TEXT NULL,
        model TEXT NULL,
        serial TEXT NULL,
        firmware TEXT NULL,
        protocol TEXT NULL,
        registered_at TEXT NOT NULL,
        last_boot_at TEXT NULL,
        accepted INTEGER NOT NULL DEFAULT 0
    , firmware_status TEXT NULL, firmware_request_id INTEGER NULL, firmware_status_at TEXT NULL);
INSERT INTO "chargers" VALUES('CP-REG','sha256$836b7380451aea2c94f0cd690dbd271a$28f7a6fe24abd1803a1137ed1f75c9d22e53b1d08d5c7fca5cdc2748af655a78','Acme','A1','S1','1.0','ocpp1.6','2026-11-01T08:00:00.000Z','2026-11-01T08:00:00.000Z',1,NULL,NULL,NULL);
INSERT INTO "chargers" VALUES('CP-201',NULL,'Volt','V2',NULL,'2.0','ocpp2.0.1','2026-11-01T08:00:00.000Z','2026-11-01T08:00:00.000Z',1,'Installed',5,'2026-11-01T08:00:00.000Z');
CREATE TABLE connector_status (
        charger_id TEXT NOT NULL,
        evse_id INTEGER NOT NULL,
        connector_id INTEGER NOT NULL,
        protocol TEXT NOT NULL,
        status TEXT NOT NULL,
        error_code TEXT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger_id, evse_id, connector_id)
    ) WITHOUT ROWID;
INSERT INTO "connector_status" VALUES('CP-201',1,1,'ocpp2.0.1','Occupied',NULL,'2026-11-01T08:00:00.000Z');
INSERT INTO "connector_status" VALUES('CP-REG',0,1,'ocpp1.6','Available',NULL,'2026-11-01T08:00:00.000Z');
CREATE TABLE id_tokens (
        id_token TEXT PRIMARY KEY COLLATE NOCASE,
        type TEXT NULL,
        status TEXT NOT NULL,
        expiry TEXT NULL,
        group_id TEXT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
INSERT INTO "id_tokens" VALUES('TAG-1',NULL,'Accepted',NULL,'FLEET','2026-11-01T08:00:00.000Z','2026-11-01T08:00:00.000Z');
CREATE TABLE meter_samples (
        transaction_id INTEGER NOT NULL,
        at TEXT NOT NULL,
        measurand TEXT NOT NULL,
        phase TEXT NOT NULL DEFAULT '',
        value REAL NOT NULL,
        unit TEXT NOT NULL,
        context TEXT NULL,
        PRIMARY KEY (transaction_id, at, measurand, phase)
    ) WITHOUT ROWID;
INSERT INTO "meter_samples" VALUES(1,'2026-11-01T08:30:00.000Z','Energy.Active.Import.Register','',4500.0,'Wh','Sample.Periodic');
INSERT INTO "meter_samples" VALUES(2,'2026-11-01T08:00:00.000Z','Energy.Active.Import.Register','',200.0,'Wh',NULL);
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO "schema_version" VALUES(3);
CREATE TABLE transaction_events (
        transaction_id INTEGER NOT NULL,
        seq_no INTEGER NOT NULL,
        PRIMARY KEY (transaction_id, seq_no)
    ) WITHOUT ROWID;
INSERT INTO "transaction_events" VALUES(2,0);
CREATE TABLE transactions (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        protocol TEXT NOT NULL,
        remote_id TEXT NULL,
        evse_id INTEGER NULL,
        connector_id INTEGER NULL,
        id_token TEXT NULL,
        started_at TEXT NOT NULL,
        stopped_at TEXT NULL,
        meter_start_wh REAL NULL,
        meter_stop_wh REAL NULL,
        meter_last_wh REAL NULL,
        energy_wh REAL NULL,
        stop_reason TEXT NULL
    );
INSERT INTO "transactions" VALUES(1,'CP-REG','ocpp1.6',NULL,NULL,1,'TAG-1','2026-11-01T08:00:00.000Z','2026-11-01T09:00:00.000Z',1000.0,8000.0,4500.0,7000.0,'Local');
INSERT INTO "transactions" VALUES(2,'CP-201','ocpp2.0.1','tx-201',1,1,'TAG-1','2026-11-01T08:00:00.000Z',NULL,200.0,NULL,200.0,0.0,NULL);
CREATE UNIQUE INDEX transactions_remote ON transactions (charger_id, remote_id) WHERE remote_id IS NOT NULL;
CREATE INDEX transactions_start16 ON transactions (charger_id, connector_id, started_at);
CREATE INDEX transactions_charger ON transactions (charger_id, id);
CREATE INDEX transactions_started ON transactions (started_at);
COMMIT;
