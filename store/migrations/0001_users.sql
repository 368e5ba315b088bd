-- Users: operators, supervisors, security officers, admins.
-- SIP secrets are stored only as digest HA1 values, web passwords as argon2id.
CREATE TABLE users (
    extension      TEXT PRIMARY KEY,
    display_name   TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('operator','supervisor','security','admin')),
    ha1_md5        TEXT NOT NULL DEFAULT '',
    ha1_sha256     TEXT NOT NULL DEFAULT '',
    web_password   TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','suspended')),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

-- Registrar bindings (location service). Kept in the database so that
-- `plateau user list` and the API show them; the registrar caches them.
CREATE TABLE registrations (
    extension   TEXT NOT NULL REFERENCES users(extension) ON DELETE CASCADE,
    contact     TEXT NOT NULL,
    source      TEXT NOT NULL,
    transport   TEXT NOT NULL,
    user_agent  TEXT NOT NULL DEFAULT '',
    call_id     TEXT NOT NULL DEFAULT '',
    cseq        INTEGER NOT NULL DEFAULT 0,
    expires_at  TEXT NOT NULL,
    PRIMARY KEY (extension, contact)
);
