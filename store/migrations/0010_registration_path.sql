-- The Path (RFC 3327) a REGISTER came with: the proxies (an edge Kamailio,
-- an SBC) a phone registered through, in order, as the route set of the
-- requests that ring it. Stored as the Path header values joined by
-- newlines; empty for a phone registered directly.
ALTER TABLE registrations ADD COLUMN path TEXT NOT NULL DEFAULT '';
