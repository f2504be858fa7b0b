-- db/schema.sql — the observe database's tables (db/views.sql holds the
-- views that are its documented interface; db/README.md describes them).
--
-- The tables hold what the logs hold, one row per record, compactly: a
-- record's id is its run's id shifted left 34 bits plus its log offset in
-- 64-byte units, so reloading a log replaces rows instead of adding them and
-- rows are appended in key order.  Each record keeps one absolute CLOCK_MONOTONIC
-- time (t_ref, ns) and its other times as ns after t_ref (d_*), NULL when the
-- event did not happen.  Applied by observe-slicer and observe-manager when a
-- database has no schema yet; PRAGMA user_version says which schema a
-- database has: 4.  Older ones are migrated by db/migrate-N.sql (N-1 to N),
-- after which the views are made anew from db/views.sql.  A column added by
-- a migration goes at the end of its table here too, so that a migrated
-- database and a new one have the same tables.

-- One log: one process on one host.
CREATE TABLE runs (
    id                  INTEGER PRIMARY KEY,
    run_id              TEXT NOT NULL UNIQUE,  -- the log's random id, hex
    client_host         TEXT NOT NULL,         -- the client host: its recorded name, or observe-manager's name for it
    boot_id             TEXT NOT NULL,
    pid                 INTEGER NOT NULL,
    ppid                INTEGER NOT NULL,
    uid                 INTEGER NOT NULL,
    exe_path            TEXT NOT NULL,
    exe                 TEXT NOT NULL,         -- last component of exe_path
    args                TEXT NOT NULL,         -- argv joined by spaces
    tags                TEXT NOT NULL,         -- k=v,... sorted by key (recorded and added)
    anchor_realtime_ns  INTEGER NOT NULL,      -- CLOCK_REALTIME read together with ...
    anchor_monotonic_ns INTEGER NOT NULL,      -- ... this CLOCK_MONOTONIC
    wait_mode           TEXT NOT NULL,         -- 'aggregate' or 'all'
    dropped             INTEGER NOT NULL,      -- the library's own counters (obs_format.h)
    fd_over_cap         INTEGER NOT NULL,
    lib_ns_sampled      INTEGER NOT NULL,
    lib_samples         INTEGER NOT NULL,
    tracked_calls       INTEGER NOT NULL,
    resolves            INTEGER NOT NULL,
    tsc_clock_since_ns  INTEGER NOT NULL,
    source              TEXT NOT NULL,         -- the log file it was loaded from
    loaded_upto         INTEGER NOT NULL,      -- offset before which every record was final
    loaded_at           TEXT NOT NULL,         -- UTC, when it was last loaded
    hostname            TEXT                   -- host name recorded by the library (version 2)
);

-- observe-manager's pulls: one row per host and attempt (version 2).
CREATE TABLE pulls (
    id          INTEGER PRIMARY KEY,
    host        TEXT NOT NULL,     -- the inventory's name for the client host
    destination TEXT NOT NULL,     -- the ssh destination
    source      TEXT NOT NULL,     -- remote database or log directory
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    ok          INTEGER NOT NULL,
    message     TEXT NOT NULL,     -- what went wrong, or a summary
    bytes       INTEGER NOT NULL,  -- size of the snapshot brought back
    runs        INTEGER NOT NULL,  -- processes merged
    records     INTEGER NOT NULL   -- rows merged
);

CREATE TABLE run_tags (
    run   INTEGER NOT NULL,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run, key)
) WITHOUT ROWID;

-- Servers by address: a label, the host (VM) it runs on and its event
-- mechanism.  port 0 matches any port of that address.
CREATE TABLE servers (
    addr      TEXT NOT NULL,
    port      INTEGER NOT NULL,
    label     TEXT NOT NULL,
    host      TEXT,
    mechanism TEXT,
    PRIMARY KEY (addr, port)
) WITHOUT ROWID;

CREATE TABLE conns (
    id             INTEGER PRIMARY KEY,
    run            INTEGER NOT NULL,
    final          INTEGER NOT NULL,  -- 1: closed; 0: live, or the process died
    flags          INTEGER NOT NULL,  -- OBS_RF_* (obs_format.h)
    side           INTEGER NOT NULL,  -- 0 client (connect), 1 server (accept)
    fd             INTEGER NOT NULL,
    t_ref          INTEGER,           -- t_connect, or the first time recorded (NULL: none)
    d_resolve_start INTEGER, d_resolve_end INTEGER, d_connect INTEGER,
    d_established  INTEGER, d_req_first INTEGER, d_req_last INTEGER,
    d_resp_ready   INTEGER, d_resp_first INTEGER, d_resp_last INTEGER,
    d_shutdown     INTEGER, d_close INTEGER,
    bytes_sent     INTEGER NOT NULL, bytes_received INTEGER NOT NULL,
    send_calls     INTEGER NOT NULL, recv_calls INTEGER NOT NULL,
    exchanges      INTEGER NOT NULL,
    connect_errno  INTEGER NOT NULL,
    local_addr     TEXT, local_port INTEGER,
    peer_addr      TEXT, peer_port INTEGER,
    d_resp_end     INTEGER            -- last response byte of any exchange (version 3)
);

CREATE TABLE xchgs (
    id             INTEGER PRIMARY KEY,
    conn           INTEGER NOT NULL,  -- conns.id
    final          INTEGER NOT NULL,
    seq            INTEGER NOT NULL,  -- 1 for the first exchange of the connection
    t_ref          INTEGER,           -- t_req_first, or the first time recorded
    d_req_first INTEGER, d_req_last INTEGER, d_resp_ready INTEGER,
    d_resp_first INTEGER, d_resp_last INTEGER,
    bytes_sent     INTEGER NOT NULL, bytes_received INTEGER NOT NULL,
    flags          INTEGER NOT NULL DEFAULT 0  -- OBS_RF_* (version 3)
);

CREATE TABLE udp_socks (
    id              INTEGER PRIMARY KEY,
    run             INTEGER NOT NULL,
    final           INTEGER NOT NULL,
    fd              INTEGER NOT NULL,
    t_ref           INTEGER,           -- first datagram, or close (NULL: neither)
    d_close         INTEGER,
    dgrams_sent     INTEGER NOT NULL, dgrams_received INTEGER NOT NULL,
    bytes_sent      INTEGER NOT NULL, bytes_received INTEGER NOT NULL,
    answered        INTEGER NOT NULL, unanswered INTEGER NOT NULL, unmatched INTEGER NOT NULL,
    local_addr      TEXT, local_port INTEGER,
    peer_addr       TEXT, peer_port INTEGER
);

CREATE TABLE dgrams (
    id             INTEGER PRIMARY KEY,
    sock           INTEGER NOT NULL,  -- udp_socks.id
    guessed        INTEGER NOT NULL,  -- answer matched without a source address
    t_ref          INTEGER,           -- t_send
    d_recv         INTEGER,           -- NULL: unanswered
    bytes_sent     INTEGER NOT NULL, bytes_received INTEGER NOT NULL,
    peer_addr      TEXT, peer_port INTEGER
);

-- Event waits, one row per call (only in logs made with OBSERVE_WAITS=all).
CREATE TABLE waits (
    id        INTEGER PRIMARY KEY,
    run       INTEGER NOT NULL,
    mechanism TEXT NOT NULL,
    interest  INTEGER NOT NULL,
    ready     INTEGER NOT NULL,
    err       INTEGER NOT NULL,
    t_ref     INTEGER,           -- t_enter
    d_exit    INTEGER
);

-- Event waits aggregated per process and mechanism (every log has these).
CREATE TABLE wait_aggs (
    run            INTEGER NOT NULL,
    mechanism      TEXT NOT NULL,
    calls          INTEGER NOT NULL,
    interest_sum   INTEGER NOT NULL,
    ready_sum      INTEGER NOT NULL,
    blocked_ns     INTEGER NOT NULL,
    blocked_max_ns INTEGER NOT NULL,
    errors         INTEGER NOT NULL,
    PRIMARY KEY (run, mechanism)
) WITHOUT ROWID;

-- No secondary indexes: every join is on a rowid, and a run's records are a
-- rowid range ([run << 34, (run + 1) << 34)).  Loading stays an append.
