-- Coaching comments on recordings (web/recordings_comments.go): a
-- supervisor marks a moment of a recorded call (at_ms from the start of the
-- WAV) with advice; the operator of the call reads it beside the player.
-- Comments are added, never edited or removed here: each one is also in the
-- audit chain (recording.comment). Times use store.FormatTime.
CREATE TABLE recording_comments (
    id           INTEGER PRIMARY KEY,
    recording_id TEXT NOT NULL REFERENCES recordings(id),
    at_ms        INTEGER NOT NULL CHECK (at_ms >= 0),
    author       TEXT NOT NULL,                 -- extension
    text         TEXT NOT NULL CHECK (length(text) BETWEEN 1 AND 2000),
    created_at   TEXT NOT NULL
);
CREATE INDEX recording_comments_recording ON recording_comments (recording_id, at_ms, id);
