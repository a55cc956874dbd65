-- What operators see: whether a consumer runs (in which process, since when), what it is
-- failing on while it retries, and how many notifications it gave up on.
--
-- running_*: written when a consumer starts and cleared when it stops. A process that died
-- without cleaning up leaves them set; running_backend_pid (the server pid of the listen
-- connection the process holds open while it runs) tells: when no session has that pid any
-- more, the process is gone or has lost its connection.
--
-- current_*: the failure of the notification being retried now (attempt n failed with this
-- error, since error_since); cleared when its retries end, handled or dead-lettered. Written
-- once per failed attempt, never per handled notification.
--
-- dead_lettered: notifications given up on since the consumer was registered (`handled`
-- counts them too: a dead-lettered notification moves the position like a handled one).
ALTER TABLE :PGWATCH_SCHEMA.consumer
  ADD COLUMN running_host        text,
  ADD COLUMN running_pid         integer,
  ADD COLUMN running_since       timestamptz,
  ADD COLUMN running_backend_pid integer,
  ADD COLUMN current_error       text,
  ADD COLUMN current_attempt     integer,
  ADD COLUMN current_log_id      bigint,
  ADD COLUMN error_since         timestamptz,
  ADD COLUMN dead_lettered       bigint NOT NULL DEFAULT 0;
