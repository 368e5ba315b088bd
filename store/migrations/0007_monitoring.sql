-- Coaching of new operators (sip/monitor.go): an operator in training has
-- calls offered to an on-duty supervisor, for the first max_calls calls
-- (0: every call) until a supervisor signs them off. Rows are kept after
-- sign-off as the record of who signed off whom, and when; the audit
-- chain has the same facts (user.train, user.signoff).
-- Times use store.FormatTime; '' means not set.
CREATE TABLE operator_training (
    extension     TEXT PRIMARY KEY,
    status        TEXT NOT NULL CHECK (status IN ('training','signed_off')),
    max_calls     INTEGER NOT NULL DEFAULT 0 CHECK (max_calls >= 0),
    calls         INTEGER NOT NULL DEFAULT 0,
    started_by    TEXT NOT NULL DEFAULT '',
    started_at    TEXT NOT NULL,
    signed_off_by TEXT NOT NULL DEFAULT '',
    signed_off_at TEXT NOT NULL DEFAULT ''
);
