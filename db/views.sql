-- db/views.sql — the views of the observe database: its documented interface
-- (db/README.md describes every column).  They are dropped and made anew
-- from this file whenever a database is migrated, so they are always the
-- current ones.  Lines that begin with @ are expanded at build time by
-- scripts/viewgen.c (it says what each one becomes): the periods come from
-- their one list in common/obs_format.h.

CREATE VIEW processes AS
SELECT r.id AS run_key, r.run_id AS run, r.client_host, r.hostname, r.boot_id, r.pid, r.ppid, r.uid, r.exe, r.exe_path,
       r.args, r.tags,
       @start_columns r.anchor_realtime_ns
       r.wait_mode,
       r.dropped, r.fd_over_cap, r.tracked_calls, r.resolves,
       CASE WHEN r.lib_samples > 0 THEN r.lib_ns_sampled * 1.0 / r.lib_samples END AS lib_ns_per_call,
       r.source, r.loaded_at
FROM runs r;

CREATE VIEW tags AS
SELECT r.run_id AS run, t.key, t.value FROM run_tags t JOIN runs r ON r.id = t.run;

CREATE VIEW phases AS
SELECT c.id AS conn_id, r.run_id AS run, r.client_host, r.pid, r.exe,
       CASE c.side WHEN 1 THEN 'server' ELSE 'client' END AS side,
       c.peer_addr, c.peer_port, c.local_addr, c.local_port,
       @server_columns r
       r.tags,
       @start_columns r.anchor_realtime_ns + c.t_ref - r.anchor_monotonic_ns
       @periods conn c
       c.bytes_sent, c.bytes_received, c.exchanges, c.connect_errno,
       c.final AS complete, c.flags,
       CASE WHEN c.final = 0 THEN NULL WHEN c.flags & 64 THEN 'exit' WHEN c.d_close IS NULL THEN 'unseen'
            ELSE 'close' END AS closed_by,
       CASE WHEN c.flags & 32 THEN 'gave up' WHEN c.flags & 4 THEN 'failed'
            WHEN c.d_established IS NOT NULL THEN 'established' END AS outcome,
       c.t_ref + c.d_connect AS t_connect, c.t_ref + c.d_established AS t_established,
       c.t_ref + c.d_req_first AS t_req_first, c.t_ref + c.d_req_last AS t_req_last,
       c.t_ref + c.d_resp_ready AS t_resp_ready, c.t_ref + c.d_resp_first AS t_resp_first,
       c.t_ref + c.d_resp_last AS t_resp_last, c.t_ref + c.d_resp_end AS t_resp_end,
       c.t_ref + c.d_close AS t_close
FROM conns c
JOIN runs r ON r.id = c.run
LEFT JOIN servers s ON s.addr = c.peer_addr AND s.port = c.peer_port
LEFT JOIN servers sa ON sa.addr = c.peer_addr AND sa.port = 0;

CREATE VIEW exchange_phases AS
SELECT x.id AS xchg_id, x.conn AS conn_id, p.run, p.client_host, p.pid, p.exe, p.side,
       p.peer_addr, p.peer_port, p.server, p.mechanism, p.server_host, p.tags, x.seq,
       @start_columns p.start_ns + x.t_ref - c.t_ref
       (x.t_ref + x.d_req_first - COALESCE(x.prev_end, CASE WHEN x.seq = 1 THEN p.t_established END)) / 1e6 AS t2_ms,
       @periods xchg x
       x.bytes_sent, x.bytes_received, x.final AS complete, (x.flags & 128) != 0 AS overlap,
       x.seq > 1 AS reused,
       CASE WHEN x.seq > 1 THEN (x.t_ref + x.d_req_first - x.prev_end) / 1e6 END AS idle_ms,
       (x.t_ref + x.d_req_first - p.t_connect) / 1e6 AS conn_age_ms
FROM (SELECT *, LAG(t_ref + d_resp_last) OVER (PARTITION BY conn ORDER BY seq) AS prev_end FROM xchgs) x
JOIN conns c ON c.id = x.conn
JOIN phases p ON p.conn_id = x.conn;

CREATE VIEW datagram_phases AS
SELECT d.id AS dgram_id, d.sock AS sock_id, r.run_id AS run, r.client_host, r.pid, r.exe,
       d.peer_addr, d.peer_port,
       @server_columns r
       r.tags,
       @start_columns r.anchor_realtime_ns + d.t_ref - r.anchor_monotonic_ns
       d.d_recv / 1e6 AS response_ms,
       d.bytes_sent, d.bytes_received,
       d.d_recv IS NOT NULL AS answered, d.guessed
FROM dgrams d
JOIN udp_socks u ON u.id = d.sock
JOIN runs r ON r.id = u.run
LEFT JOIN servers s ON s.addr = d.peer_addr AND s.port = d.peer_port
LEFT JOIN servers sa ON sa.addr = d.peer_addr AND sa.port = 0;

CREATE VIEW event_waits AS
SELECT r.run_id AS run, r.client_host, r.pid, r.exe, r.tags, w.mechanism, w.calls,
       w.interest_sum * 1.0 / w.calls AS interest_avg,
       w.ready_sum * 1.0 / w.calls AS ready_avg,
       w.blocked_ns / 1e6 AS blocked_ms,
       w.blocked_ns / 1e6 / w.calls AS blocked_avg_ms,
       w.blocked_max_ns / 1e6 AS blocked_max_ms,
       w.errors
FROM wait_aggs w JOIN runs r ON r.id = w.run
WHERE w.calls > 0;

CREATE VIEW wait_calls AS
SELECT w.id AS wait_id, r.run_id AS run, r.client_host, r.pid, r.exe, r.tags, w.mechanism, w.interest,
       w.ready, w.err,
       @start_columns r.anchor_realtime_ns + w.t_ref - r.anchor_monotonic_ns
       w.d_exit / 1e6 AS blocked_ms
FROM waits w JOIN runs r ON r.id = w.run;
