-- Audit log: an append-only hash chain. Each row's hash covers its own
-- fields and the previous row's hash, so altering, removing or reordering
-- rows breaks the chain at that row (see package audit). seq is assigned by
-- the appender as last seq + 1, never by SQLite, so a gap is a deletion.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    time       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL DEFAULT '',
    subject    TEXT NOT NULL DEFAULT '',
    outcome    TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL DEFAULT '',
    source     TEXT NOT NULL DEFAULT '',
    details    TEXT NOT NULL DEFAULT '{}',
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_log_kind ON audit_log (kind, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_subject ON audit_log (subject, seq);
CREATE INDEX audit_log_time ON audit_log (time);

-- Refuse edits and deletions from ordinary SQL. This stops mistakes, not a
-- determined attacker with the file (who can drop the triggers): Verify is
-- what detects tampering.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
