-- db/migrate-2.sql — schema version 1 to 2 (observe-manager's pulls).
-- runs.client_host may now be the manager's name for a host, so the name the
-- library recorded moves to runs.hostname; pulls records what was pulled.
ALTER TABLE runs ADD COLUMN hostname TEXT;
UPDATE runs SET hostname = client_host;
CREATE TABLE pulls (
    id          INTEGER PRIMARY KEY,
    host        TEXT NOT NULL,
    destination TEXT NOT NULL,
    source      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    ok          INTEGER NOT NULL,
    message     TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    runs        INTEGER NOT NULL,
    records     INTEGER NOT NULL
);
