-- Recordings index: one row per recording, inserted when the recording
-- starts (state open) and updated when it ends, in the same transaction as
-- its audit entry (recordings/index.go), so the index and the audit chain
-- never disagree. Rows are never removed: retention deletes the files and
-- marks the row deleted, so security can still prove what existed.
-- Times use store.FormatTime; '' means not set. path is relative to the
-- recordings directory (recordings.dir), so the directory may move.
CREATE TABLE recordings (
    id           TEXT PRIMARY KEY,
    call_ids     TEXT NOT NULL DEFAULT '[]',  -- JSON array of SIP Call-IDs
    operator     TEXT NOT NULL DEFAULT '',
    number       TEXT NOT NULL DEFAULT '',    -- E.164
    campaign     TEXT NOT NULL DEFAULT '',
    start_time   TEXT NOT NULL,
    end_time     TEXT NOT NULL DEFAULT '',
    duration_ms  INTEGER NOT NULL DEFAULT 0,
    path         TEXT NOT NULL UNIQUE,
    sha256       TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL CHECK (state IN ('open','closed','repaired','failed','deleted')),
    legal_hold   INTEGER NOT NULL DEFAULT 0 CHECK (legal_hold IN (0,1)),
    disposition  TEXT NOT NULL DEFAULT '',
    deleted_at   TEXT NOT NULL DEFAULT '',
    deleted_by   TEXT NOT NULL DEFAULT '',
    -- A closed or repaired recording always has its hash; a held one is
    -- never deleted. Backstops against bugs, not against the file's owner.
    CHECK (state NOT IN ('closed','repaired') OR sha256 <> ''),
    CHECK (state <> 'deleted' OR (deleted_at <> '' AND legal_hold = 0))
);
CREATE INDEX recordings_start ON recordings (start_time);
CREATE INDEX recordings_operator ON recordings (operator, start_time);
CREATE INDEX recordings_number ON recordings (number, start_time);
CREATE INDEX recordings_campaign ON recordings (campaign, start_time);
CREATE INDEX recordings_state ON recordings (state, start_time);

-- The evidence trail: a row is kept forever and its hash, once set, is
-- fixed. A bug (or a careless UPDATE) fails loudly instead of erasing it.
CREATE TRIGGER recordings_keep_rows BEFORE DELETE ON recordings
BEGIN
    SELECT RAISE(ABORT, 'recordings rows are kept: mark them deleted');
END;
CREATE TRIGGER recordings_hash_fixed BEFORE UPDATE OF sha256 ON recordings
WHEN OLD.sha256 <> '' AND NEW.sha256 <> OLD.sha256
BEGIN
    SELECT RAISE(ABORT, 'the sha256 of a recording never changes');
END;
