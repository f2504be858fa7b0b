-- db/migrate-4.sql — schema version 3 to 4.
-- The tables are unchanged; the views are new (every migration makes them
-- anew): exchange_phases gains reused, idle_ms and conn_age_ms, and the
-- views' text is now expanded from the log format's period lists.
SELECT 1;
