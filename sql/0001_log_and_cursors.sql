-- pgwatch schema, version 1.
--
-- The migrator replaces :PGWATCH_SCHEMA with the quoted schema name and
-- :PGWATCH_SCHEMA_LITERAL with it as a string literal, so one file serves any schema.
--
-- Delivery model (PgQ's, see README "How delivery works"): every log row records the
-- transaction that wrote it (xid8). A consumer's cursor is the snapshot below which it has
-- seen everything; the next batch is what became visible since. A row whose id is low but
-- whose transaction commits late lands in a later batch: never skipped, never duplicated.

CREATE TABLE :PGWATCH_SCHEMA.notification_log (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  channel    text        NOT NULL CHECK (channel ~ '^[A-Za-z_][A-Za-z0-9_$]{0,62}$'),
  payload    jsonb       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  xid        xid8        NOT NULL DEFAULT pg_current_xact_id()
);

-- Readers page one channel at a time in (xid, id) order.
CREATE INDEX notification_log_channel_xid_id ON :PGWATCH_SCHEMA.notification_log (channel, xid, id);
-- Retention deletes by age.
CREATE INDEX notification_log_created_at ON :PGWATCH_SCHEMA.notification_log (created_at);

-- One row per consumer: where it is. `done` is a snapshot: every row visible in it has been
-- handled. `batch` is the snapshot being paged through, and (after_xid, after_id) the last
-- row of it that was handled; a null batch means the consumer is between batches.
CREATE TABLE :PGWATCH_SCHEMA.consumer (
  id          text        PRIMARY KEY,
  channels    text[]      NOT NULL,
  done        pg_snapshot NOT NULL,
  batch       pg_snapshot,
  after_xid   xid8,
  after_id    bigint,
  handled     bigint      NOT NULL DEFAULT 0,
  last_log_id bigint,
  last_error  text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Notifications a consumer gave up on (a permanent error, a payload that failed its schema,
-- or retries exhausted). Kept for inspection and re-driving.
CREATE TABLE :PGWATCH_SCHEMA.dead_letter (
  consumer_id text        NOT NULL REFERENCES :PGWATCH_SCHEMA.consumer (id) ON DELETE CASCADE,
  log_id      bigint      NOT NULL REFERENCES :PGWATCH_SCHEMA.notification_log (id) ON DELETE CASCADE,
  reason      text        NOT NULL,
  error       text        NOT NULL,
  attempts    integer     NOT NULL,
  failed_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_id, log_id)
);
CREATE INDEX dead_letter_log_id ON :PGWATCH_SCHEMA.dead_letter (log_id);

-- Notifications to hand to a consumer again, out of band of its cursor (re-driven dead
-- letters, or an operator's replay).
CREATE TABLE :PGWATCH_SCHEMA.redelivery (
  consumer_id  text        NOT NULL REFERENCES :PGWATCH_SCHEMA.consumer (id) ON DELETE CASCADE,
  log_id       bigint      NOT NULL REFERENCES :PGWATCH_SCHEMA.notification_log (id) ON DELETE CASCADE,
  requested_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer_id, log_id)
);
CREATE INDEX redelivery_log_id ON :PGWATCH_SCHEMA.redelivery (log_id);

-- Consumers that are waiting for a wake-up, by channel. A producer sends NOTIFY only when a
-- row here says someone is waiting: a consumer that is busy catching up polls instead, so
-- writers do not pay for NOTIFY's commit-time lock while nobody needs it. Unlogged: after a
-- crash it is empty, and consumers re-register when they reconnect.
CREATE UNLOGGED TABLE :PGWATCH_SCHEMA.waiting (
  channel     text    NOT NULL,
  consumer_id text    NOT NULL,
  backend_pid integer NOT NULL,
  PRIMARY KEY (channel, consumer_id)
);

-- The NOTIFY payload: a wake-up naming this schema, never data (the log is the truth).
CREATE FUNCTION :PGWATCH_SCHEMA.wake_payload() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT json_build_object('pgwatch', 1, 'schema', :PGWATCH_SCHEMA_LITERAL)::text $$;

-- Wake whoever waits on `channel`. Identical NOTIFYs in one transaction are merged by
-- PostgreSQL, so a transaction that writes many rows sends one wake-up per channel.
CREATE FUNCTION :PGWATCH_SCHEMA.wake(channel text) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM :PGWATCH_SCHEMA.waiting w WHERE w.channel = wake.channel) THEN
    PERFORM pg_notify(channel, :PGWATCH_SCHEMA.wake_payload());
  END IF;
END
$$;

-- Store one notification in the caller's transaction; returns its log id.
CREATE FUNCTION :PGWATCH_SCHEMA.smart_notify(channel text, payload jsonb) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
  log_id bigint;
BEGIN
  INSERT INTO :PGWATCH_SCHEMA.notification_log (channel, payload)
  VALUES (channel, coalesce(payload, 'null'::jsonb))
  RETURNING id INTO log_id;
  PERFORM :PGWATCH_SCHEMA.wake(channel);
  RETURN log_id;
END
$$;

-- Store many notifications on one channel in the caller's transaction; returns their ids in
-- the order given.
CREATE FUNCTION :PGWATCH_SCHEMA.smart_notify_many(channel text, payloads jsonb[])
RETURNS SETOF bigint
LANGUAGE plpgsql
AS $$
BEGIN
  RETURN QUERY
    INSERT INTO :PGWATCH_SCHEMA.notification_log (channel, payload)
    SELECT smart_notify_many.channel, coalesce(p, 'null'::jsonb)
    FROM unnest(payloads) WITH ORDINALITY AS t(p, n)
    ORDER BY n
    RETURNING id;
  PERFORM :PGWATCH_SCHEMA.wake(channel);
END
$$;

-- One page of what became visible to a reader since `done`, up to `batch`, after the
-- position (after_xid, after_id), in (xid, id) order. A row not visible in `done` either
-- belongs to a transaction in progress at `done` (part a: looked up by xid) or to one that
-- started after it (part b: an index range from xmax(done)). Each part gives the index a
-- single lower bound, so a scan starts where it should.
CREATE FUNCTION :PGWATCH_SCHEMA.read_page(
  channels text[], done pg_snapshot, batch pg_snapshot,
  after_xid xid8, after_id bigint, page_size integer
)
RETURNS TABLE (id bigint, channel text, payload jsonb, created_at timestamptz, xid xid8)
LANGUAGE sql STABLE
AS $$
  SELECT r.id, r.channel, r.payload, r.created_at, r.xid
  FROM unnest(channels) AS c(name)
  CROSS JOIN LATERAL (
    (SELECT l.id, l.channel, l.payload, l.created_at, l.xid
       FROM pg_snapshot_xip(done) AS x(xid)
       CROSS JOIN LATERAL (
         SELECT * FROM :PGWATCH_SCHEMA.notification_log l
          WHERE l.channel = c.name AND l.xid = x.xid
            AND l.id > CASE WHEN x.xid = after_xid THEN after_id ELSE 0 END
            AND pg_visible_in_snapshot(l.xid, batch)
          ORDER BY l.xid, l.id
          LIMIT page_size
       ) AS l
      WHERE x.xid >= after_xid
      ORDER BY l.xid, l.id
      LIMIT page_size)
    UNION ALL
    (SELECT l.id, l.channel, l.payload, l.created_at, l.xid
       FROM :PGWATCH_SCHEMA.notification_log l
      WHERE l.channel = c.name
        AND (l.xid, l.id) > (
          CASE WHEN after_xid >= pg_snapshot_xmax(done) THEN after_xid ELSE pg_snapshot_xmax(done) END,
          CASE WHEN after_xid >= pg_snapshot_xmax(done) THEN after_id ELSE 0 END)
        AND l.xid < pg_snapshot_xmax(batch)
        AND pg_visible_in_snapshot(l.xid, batch)
      ORDER BY l.xid, l.id
      LIMIT page_size)
  ) AS r
  ORDER BY r.xid, r.id
  LIMIT page_size
$$;
