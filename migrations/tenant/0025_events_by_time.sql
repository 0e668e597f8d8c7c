-- Recorded events in the order they happened (issue 13 point 11): a backtest reads the
-- period's events a page at a time by (occurred_at, id), and counts them first. Without
-- this index every page sorted the whole event log (bench-backtest: PostgreSQL spent
-- 114 CPU-seconds on 1,000 pages of a million events).
CREATE INDEX events_occurred_idx ON events (occurred_at, id);
