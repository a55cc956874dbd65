-- How a running consumer learns of new rows, for `status`: 'wake-ups' (LISTEN delivers; it
-- reads at each NOTIFY) or 'polling' (no wake-ups can come: its process's listen connection is
-- lost or goes through a pooler in transaction mode, so it reads every fallbackPollInterval).
-- Written by the consumer when it changes; NULL until a consumer of this version has run.
ALTER TABLE :PGWATCH_SCHEMA.consumer ADD COLUMN delivery_mode text
  CHECK (delivery_mode IN ('wake-ups', 'polling'));
