-- Settlement marks are written a million at a time when a month closes (bench-settlement):
-- their foreign keys cost a trigger call per row. The rows are made only by
-- `alliance::settlement` from entries it has just read, in the statement's own
-- transaction, and entries are never deleted; the primary key still settles an entry once.
ALTER TABLE settlement_marks DROP CONSTRAINT settlement_marks_entry_id_fkey;
ALTER TABLE settlement_marks DROP CONSTRAINT settlement_marks_statement_id_fkey;
