-- db/migrate-3.sql — schema version 2 to 3.
-- A connection's T2-T5 are now its first exchange's: conns.d_resp_last is
-- the first exchange's last response byte and d_resp_end the last of any
-- exchange (T6 starts there).  Rows loaded before keep their d_resp_last,
-- which was the last of any exchange: it moves to d_resp_end, and stays
-- the first exchange's only where that was the only one.  Exchanges get
-- their record flags (OBS_RF_OVERLAP).
ALTER TABLE conns ADD COLUMN d_resp_end INTEGER;
UPDATE conns SET d_resp_end = d_resp_last,
                 d_resp_last = CASE WHEN exchanges <= 1 THEN d_resp_last END;
ALTER TABLE xchgs ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;
