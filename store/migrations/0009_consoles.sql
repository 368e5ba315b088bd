-- The operator console (issue 14): answers to the script's capture fields
-- (JSON object field -> text) on each attempt and, latest per field, on the
-- contact for the client export; a campaign's outcome corrections are
-- audited (dialer.outcome_corrected), the attempt keeps its disposed_at so
-- the operator's correction window does not restart with each correction.
ALTER TABLE attempts ADD COLUMN answers TEXT NOT NULL DEFAULT '{}';
ALTER TABLE contacts ADD COLUMN answers TEXT NOT NULL DEFAULT '{}';
