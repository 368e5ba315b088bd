-- Preview dialer (package dialer): campaigns, their contacts, and every
-- attempt with its disposition. Times use store.FormatTime ('' = none), so
-- SQLite compares them as strings in time order.
--
-- There is deliberately no table or index keyed by operator for results:
-- the centre coaches people, it does not rank them. The operator columns
-- below exist only to hand a callback back to the person who promised it
-- and to make that person enter a disposition after their call.
CREATE TABLE campaigns (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    client        TEXT NOT NULL DEFAULT '',
    script        TEXT NOT NULL DEFAULT '',           -- Markdown shown to operators
    windows       TEXT NOT NULL DEFAULT '[]',         -- JSON [{days, from, to}]; [] = the site's
    dispositions  TEXT NOT NULL,                      -- JSON [{name, action, retry_after, max_attempts}]
    max_attempts  INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    status        TEXT NOT NULL CHECK (status IN ('draft','active','paused','finished')),
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE campaign_operators (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    extension    TEXT NOT NULL REFERENCES users(extension),
    PRIMARY KEY (campaign_id, extension)
);

-- A contact is 'open' (in the queue; leased while lease_until is in the
-- future), 'pending' (called, waiting for the caller's disposition) or
-- 'done'. due_at is the earliest instant it may be offered: the import,
-- a retry, a callback, or the end of the current lease.
CREATE TABLE contacts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id       INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    e164              TEXT NOT NULL CHECK (e164 GLOB '+[1-9][0-9]*' AND length(e164) BETWEEN 3 AND 16),
    company           TEXT NOT NULL DEFAULT '',
    contact           TEXT NOT NULL DEFAULT '',
    email             TEXT NOT NULL DEFAULT '',
    city              TEXT NOT NULL DEFAULT '',
    notes             TEXT NOT NULL DEFAULT '',
    custom            TEXT NOT NULL DEFAULT '{}',      -- JSON object: the file's other columns
    import_line       INTEGER NOT NULL DEFAULT 0,
    state             TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open','pending','done')),
    due_at            TEXT NOT NULL,
    leased_by         TEXT NOT NULL DEFAULT '',
    lease_until       TEXT NOT NULL DEFAULT '',
    callback_by       TEXT NOT NULL DEFAULT '',
    callback_at       TEXT NOT NULL DEFAULT '',
    attempts          INTEGER NOT NULL DEFAULT 0,
    last_disposition  TEXT NOT NULL DEFAULT '',
    last_notes        TEXT NOT NULL DEFAULT '',
    UNIQUE (campaign_id, e164)
);
CREATE INDEX contacts_queue ON contacts (campaign_id, due_at, id) WHERE state = 'open';
CREATE INDEX contacts_callbacks ON contacts (campaign_id, callback_at) WHERE state = 'open' AND callback_by <> '';
CREATE INDEX contacts_holder ON contacts (leased_by) WHERE leased_by <> '';

-- One row per call placed to a contact (outcome set) or per disposition
-- entered without a recorded call (outcome '').
CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id   INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    campaign_id  INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    operator     TEXT NOT NULL,
    at           TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('','answered','busy','no_answer','failed')),
    sip_status   INTEGER NOT NULL DEFAULT 0,
    call_id      TEXT NOT NULL DEFAULT '',
    disposition  TEXT NOT NULL DEFAULT '',
    notes        TEXT NOT NULL DEFAULT '',
    callback_at  TEXT NOT NULL DEFAULT '',
    disposed_at  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX attempts_contact ON attempts (contact_id, id);
CREATE INDEX attempts_campaign ON attempts (campaign_id);
