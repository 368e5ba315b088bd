-- Web console sessions (package web). The session id is never stored, only
-- its SHA-256 (id_hash), so a copy of the database hands out no live
-- session. csrf is the session's synchroniser token. Expiry (idle and
-- absolute) is decided by the web package from last_seen and created_at.
CREATE TABLE web_sessions (
    id_hash     TEXT PRIMARY KEY,
    extension   TEXT NOT NULL REFERENCES users(extension) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    last_seen   TEXT NOT NULL
);
CREATE INDEX web_sessions_extension ON web_sessions (extension);
CREATE INDEX web_sessions_last_seen ON web_sessions (last_seen);
