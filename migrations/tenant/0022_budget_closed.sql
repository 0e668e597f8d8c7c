-- A mall's issuing budget is closed when it leaves its alliance (issue 12, A1): no more
-- issues or top-ups; its balance stays visible. Joining again reopens it. Used in
-- alliance schemas (a_<id>); merchant schemas hold the table empty.
ALTER TABLE budgets ADD COLUMN closed_at timestamptz;
