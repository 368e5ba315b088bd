-- Allowlist: the only numbers operators may call. An entry is proposed by
-- one person and approved (or rejected) by another, a security officer or
-- admin: the two-person rule is enforced in store/allowlist.go and, as a
-- backstop against bugs, by the CHECK below. Revocation is recorded apart
-- so the approver stays known. Times use store.FormatTime; valid_until ''
-- means no end.
CREATE TABLE allowlist (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    e164         TEXT NOT NULL CHECK (e164 GLOB '+[1-9][0-9]*' AND length(e164) BETWEEN 3 AND 16),
    label        TEXT NOT NULL DEFAULT '',
    campaign     TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL CHECK (status IN ('proposed','approved','rejected','revoked')),
    proposed_by  TEXT NOT NULL REFERENCES users(extension),
    proposed_at  TEXT NOT NULL,
    decided_by   TEXT NOT NULL DEFAULT '',
    decided_at   TEXT NOT NULL DEFAULT '',
    revoked_by   TEXT NOT NULL DEFAULT '',
    revoked_at   TEXT NOT NULL DEFAULT '',
    valid_from   TEXT NOT NULL,
    valid_until  TEXT NOT NULL DEFAULT '',
    note         TEXT NOT NULL DEFAULT '',
    CHECK (decided_by = '' OR decided_by <> proposed_by),
    CHECK (status = 'proposed' OR decided_by <> '')
);
-- One live entry per number and campaign.
CREATE UNIQUE INDEX allowlist_live ON allowlist (e164, campaign) WHERE status IN ('proposed','approved');
CREATE INDEX allowlist_lookup ON allowlist (e164, status);
CREATE INDEX allowlist_campaign ON allowlist (campaign, status);

-- Do-not-call list: refused whatever the allowlist says.
CREATE TABLE dnc (
    e164      TEXT PRIMARY KEY,
    reason    TEXT NOT NULL DEFAULT '',
    added_by  TEXT NOT NULL,
    added_at  TEXT NOT NULL
);
