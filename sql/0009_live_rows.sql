-- Live rows (README "Security: live rows and confidential channels"). While a consumer waits on
-- a channel, the producers send one NOTIFY per log row that carries the row itself, so a reader
-- that is caught up takes it from its listen connection instead of reading a page. The format
-- is packages/core/src/internal/liveRow.ts's:
--
--   pgwatch:2:<schema>:<kind>:<id>:<xid>:<created_at µs>:<hmac hex>:<body>
--
-- kind r: a row with its payload (jsonb text) as body; kind i: a row without it (the NOTIFY
-- would pass 7999 bytes, or a waiter asked for ids only); kind x: "read transaction <xid>",
-- sent instead of rows once the transaction has sent 100 of them.
--
-- Any role may NOTIFY any channel, so a reader believes a live row only when its HMAC-SHA256
-- verifies. The key is this installation's, readable only by the owner (and, as hex, through
-- live_key() by the consumer role). The HMAC is built from PostgreSQL's own sha256() (11+):
-- sha256(opad || sha256(ipad || message)), pads precomputed, so no extension is needed. The
-- message is `<channel>:<the NOTIFY up to the mac>:<body>` as UTF-8: binding the channel means
-- a row sent on one channel cannot be replayed on another.

-- One row: 32 bytes from the server's strong random source (gen_random_uuid() draws 122 bits
-- of each UUID from it; three of them hashed), and the 64-byte HMAC pads of that key.
CREATE TABLE :PGWATCH_SCHEMA.live_key (
  one  boolean PRIMARY KEY DEFAULT true CHECK (one),
  key  bytea NOT NULL CHECK (pg_catalog.octet_length(key) = 32),
  ipad bytea NOT NULL CHECK (pg_catalog.octet_length(ipad) = 64),
  opad bytea NOT NULL CHECK (pg_catalog.octet_length(opad) = 64)
);
REVOKE ALL ON TABLE :PGWATCH_SCHEMA.live_key FROM PUBLIC;

INSERT INTO :PGWATCH_SCHEMA.live_key (key, ipad, opad)
SELECT k.key,
       pg_catalog.decode(pg_catalog.string_agg(pg_catalog.lpad(pg_catalog.to_hex(b.byte # 54), 2, '0'), '' ORDER BY b.i), 'hex'),
       pg_catalog.decode(pg_catalog.string_agg(pg_catalog.lpad(pg_catalog.to_hex(b.byte # 92), 2, '0'), '' ORDER BY b.i), 'hex')
  FROM (SELECT pg_catalog.sha256(
                 pg_catalog.uuid_send(pg_catalog.gen_random_uuid()) ||
                 pg_catalog.uuid_send(pg_catalog.gen_random_uuid()) ||
                 pg_catalog.uuid_send(pg_catalog.gen_random_uuid())) AS key) AS k
 CROSS JOIN LATERAL (
   SELECT i, CASE WHEN i < 32 THEN pg_catalog.get_byte(k.key, i) ELSE 0 END AS byte
     FROM pg_catalog.generate_series(0, 63) AS i
 ) AS b
 GROUP BY k.key;

-- How a consumer process learns the key: it runs with the owner's rights, and only roles
-- granted EXECUTE (pgwatch grant --as consumer) may call it.
CREATE FUNCTION :PGWATCH_SCHEMA.live_key() RETURNS text
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.encode(k.key, 'hex') FROM :PGWATCH_SCHEMA.live_key k $$;

-- An installation upgraded in place keeps its consumers' grants: their group role (Roles.ts)
-- learns the key too, without running `pgwatch grant` again.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :PGWATCH_SCHEMA_LITERAL || '_consumer') THEN
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %I.live_key() TO %I',
      :PGWATCH_SCHEMA_LITERAL, :PGWATCH_SCHEMA_LITERAL || '_consumer');
  END IF;
END
$$;

-- false: the consumer asked for a confidential channel; rows on it go as ids only (kind i),
-- and the consumer reads each with its own privileges. One such waiter decides for the channel.
ALTER TABLE :PGWATCH_SCHEMA.waiting ADD COLUMN payloads boolean NOT NULL DEFAULT true;

-- Wakes whoever waits on `channel` with "read what this transaction wrote there" (kind x).
-- PostgreSQL merges identical NOTIFYs of one transaction, so it goes once per channel however
-- often it is called.
CREATE OR REPLACE FUNCTION :PGWATCH_SCHEMA.wake(channel text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  header text := 'pgwatch:2:' || :PGWATCH_SCHEMA_LITERAL || ':x:0:' || pg_catalog.pg_current_xact_id()::text || ':0';
BEGIN
  IF EXISTS (SELECT 1 FROM :PGWATCH_SCHEMA.waiting w WHERE w.channel = wake.channel) THEN
    PERFORM pg_catalog.pg_notify(channel, header || ':' || pg_catalog.encode(pg_catalog.sha256(k.opad || pg_catalog.sha256(
              k.ipad || pg_catalog.convert_to(channel || ':' || header || ':', 'UTF8'))), 'hex') || ':')
       FROM :PGWATCH_SCHEMA.live_key k;
  END IF;
END
$$;

-- Store one notification in the caller's transaction; returns its log id. While someone waits
-- on the channel (looked up after the insert, as before: a consumer that registers after this
-- look finds the transaction in progress in its next snapshot and reads the row from the log),
-- sends the row's live NOTIFY:
-- - kind r with the payload; kind i (ids only) when a waiter asked for ids only, or when the
--   NOTIFY would pass 7999 bytes (a payload stored bigger than 64 kB, several times what could
--   fit whatever its shape, is not even turned into text);
-- - once the transaction has sent 100 rows, its "read xid" instead (wake). The count is the
--   transaction-local setting pgwatch.live_sent, shared by the schemas of a database: the bound
--   is on what one commit sends. Rolling back to a savepoint discards both the NOTIFYs sent
--   since and the settings' changes (the count, pgwatch.live_x), so they stay in step.
-- Written out in one function: in a transaction that sends one row, each further PL/pgSQL call
-- cost ~20 µs of set-up (measured against variants of this function), as much as the rest of
-- the live row. scratchpad/liveRowsCost.ts compares it with 0008's smart_notify.
CREATE OR REPLACE FUNCTION :PGWATCH_SCHEMA.smart_notify(channel text, payload jsonb) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  stored jsonb := coalesce(payload, 'null'::jsonb);
  log_id bigint;
  log_xid xid8;
  log_created_at timestamptz;
  with_payloads boolean;
  ipad bytea;
  opad bytea;
  sent integer;
  header text;
  body text := '';
  woken text;
  here text;
BEGIN
  INSERT INTO :PGWATCH_SCHEMA.notification_log (channel, payload)
  VALUES (channel, stored)
  RETURNING id, xid, created_at INTO log_id, log_xid, log_created_at;
  -- null: nobody waits; false: someone wants ids only.
  SELECT (SELECT pg_catalog.bool_and(w.payloads) FROM :PGWATCH_SCHEMA.waiting w WHERE w.channel = smart_notify.channel),
         k.ipad, k.opad
    INTO with_payloads, ipad, opad
    FROM :PGWATCH_SCHEMA.live_key k;
  IF with_payloads IS NULL THEN
    RETURN log_id;
  END IF;
  sent := coalesce(nullif(pg_catalog.current_setting('pgwatch.live_sent', true), ''), '0')::integer;
  IF sent >= 100 THEN
    -- Once per channel: PostgreSQL would merge the copies, but each costs a call to make.
    -- pgwatch.live_x lists where it went as ' <schema>:<channel> ...' (names have no spaces).
    woken := coalesce(pg_catalog.current_setting('pgwatch.live_x', true), '');
    here := ' ' || :PGWATCH_SCHEMA_LITERAL || ':' || channel;
    IF pg_catalog.strpos(woken || ' ', here || ' ') = 0 THEN
      PERFORM :PGWATCH_SCHEMA.wake(channel);
      PERFORM pg_catalog.set_config('pgwatch.live_x', woken || here, true);
    END IF;
    RETURN log_id;
  END IF;
  PERFORM pg_catalog.set_config('pgwatch.live_sent', (sent + 1)::text, true);
  header := ':' || log_id::text || ':' || log_xid::text || ':'
    || (extract(epoch FROM log_created_at) * 1000000)::bigint::text;
  IF with_payloads AND pg_catalog.pg_column_size(stored) <= 65536 THEN
    body := stored::text;
  END IF;
  -- 'pgwatch:2:' <schema> ':r' <header> ':' <64 hex> ':' <body>
  IF body <> '' AND 10 + pg_catalog.octet_length(:PGWATCH_SCHEMA_LITERAL) + 2 + pg_catalog.octet_length(header) + 66
       + pg_catalog.octet_length(body) <= 7999 THEN
    header := 'pgwatch:2:' || :PGWATCH_SCHEMA_LITERAL || ':r' || header;
  ELSE
    header := 'pgwatch:2:' || :PGWATCH_SCHEMA_LITERAL || ':i' || header;
    body := '';
  END IF;
  PERFORM pg_catalog.pg_notify(channel, header || ':' || pg_catalog.encode(pg_catalog.sha256(opad || pg_catalog.sha256(
            ipad || pg_catalog.convert_to(channel || ':' || header || ':' || body, 'UTF8'))), 'hex') || ':' || body);
  RETURN log_id;
END
$$;

-- Store many notifications on one channel in the caller's transaction; returns their ids in
-- the order given. While someone waits, the rows the transaction may still send live go as
-- smart_notify sends them (the same NOTIFYs, made in one statement: half the cost of a call per
-- row), and wake sends the transaction's "read xid" for the rest. xid and created_at are the
-- columns' defaults: this transaction's, for every row.
CREATE OR REPLACE FUNCTION :PGWATCH_SCHEMA.smart_notify_many(channel text, payloads jsonb[])
RETURNS SETOF bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  ids bigint[];
  with_payloads boolean;
  ipad bytea;
  opad bytea;
  sent integer;
  live integer;
BEGIN
  WITH inserted AS (
    INSERT INTO :PGWATCH_SCHEMA.notification_log (channel, payload)
    SELECT smart_notify_many.channel, coalesce(t.p, 'null'::jsonb)
    FROM pg_catalog.unnest(payloads) WITH ORDINALITY AS t(p, n)
    ORDER BY t.n
    RETURNING id
  )
  -- Ids are drawn in insertion order, so sorting them keeps the order given.
  SELECT pg_catalog.array_agg(inserted.id ORDER BY inserted.id) INTO ids FROM inserted;
  RETURN QUERY SELECT pg_catalog.unnest(ids);
  SELECT (SELECT pg_catalog.bool_and(w.payloads) FROM :PGWATCH_SCHEMA.waiting w WHERE w.channel = smart_notify_many.channel),
         k.ipad, k.opad
    INTO with_payloads, ipad, opad
    FROM :PGWATCH_SCHEMA.live_key k;
  IF with_payloads IS NULL OR ids IS NULL THEN
    RETURN;
  END IF;
  sent := coalesce(nullif(pg_catalog.current_setting('pgwatch.live_sent', true), ''), '0')::integer;
  live := LEAST(pg_catalog.cardinality(ids), GREATEST(100 - sent, 0));
  IF live > 0 THEN
    PERFORM pg_catalog.set_config('pgwatch.live_sent', (sent + live)::text, true);
    PERFORM pg_catalog.pg_notify(channel, r.header || ':' || pg_catalog.encode(pg_catalog.sha256(opad || pg_catalog.sha256(
              ipad || pg_catalog.convert_to(channel || ':' || r.header || ':' || r.body, 'UTF8'))), 'hex') || ':' || r.body)
       FROM (SELECT 'pgwatch:2:' || :PGWATCH_SCHEMA_LITERAL || CASE WHEN f.fits THEN ':r' ELSE ':i' END || f.tail AS header,
                    CASE WHEN f.fits THEN f.body ELSE '' END AS body
               FROM (SELECT b.n, b.tail, b.body,
                            b.body IS NOT NULL AND 10 + pg_catalog.octet_length(:PGWATCH_SCHEMA_LITERAL) + 2
                              + pg_catalog.octet_length(b.tail) + 66 + pg_catalog.octet_length(b.body) <= 7999 AS fits
                       FROM (SELECT u.n,
                                    ':' || u.id::text || ':' || pg_catalog.pg_current_xact_id()::text || ':'
                                      || (extract(epoch FROM pg_catalog.now()) * 1000000)::bigint::text AS tail,
                                    CASE WHEN with_payloads AND pg_catalog.pg_column_size(coalesce(u.p, 'null'::jsonb)) <= 65536
                                         THEN coalesce(u.p, 'null'::jsonb)::text END AS body
                               FROM ROWS FROM (pg_catalog.unnest(ids), pg_catalog.unnest(payloads)) WITH ORDINALITY AS u(id, p, n)
                              WHERE u.n <= live) AS b) AS f
              ORDER BY f.n) AS r;
  END IF;
  IF pg_catalog.cardinality(ids) > live THEN
    PERFORM :PGWATCH_SCHEMA.wake(channel);
  END IF;
END
$$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA :PGWATCH_SCHEMA FROM PUBLIC;
