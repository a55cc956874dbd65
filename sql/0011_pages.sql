-- Multi-channel pages that read about what they return. read_batch_page (0005) reads up to
-- page_size + 1 rows per channel, payloads included, then keeps page_size of them: a reader
-- on 100 channels read 100 rows for each one it returned.
--
-- read_page_<arity> reads the channels as one merge: a UNION ALL of one (channel, xid, id)
-- index scan per channel under one ORDER BY xid, id, which PostgreSQL runs as a Merge Append
-- that pulls a row from a channel only when it is the next in order. A page of n rows reads
-- n + 1 rows, plus one row ahead per channel. PL/pgSQL caches a statement's plan only when
-- its text is fixed, so the merge is written out for fixed arities (2, 4, ..., 512
-- channels); a smaller set fills the rest with nulls, which match nothing and cost
-- an index scan that stops before it starts. Each is planned once per connection, generic,
-- where the planner cannot see how few rows a page takes: without bitmap and sequential scans
-- (which read a channel's whole range, then sort it) the merge is its only plan.
-- One channel, or more than 512, stays with read_batch_page. The reader picks the function
-- (internal/pages.ts), so a page is materialised once, as before.
--
-- Everything else is read_batch_page's: the batch snapshot (taken when batch is null), rows
-- of transactions in progress at `done` (part a, looked up by xid, read here for all the
-- channels at once) and of later ones (part b, an index range from xmax(done)), the position
-- after (after_xid, after_id), the byte budget with a larger row coming alone, and the marker
-- row that carries the snapshot and whether the page finished the batch.
DO $generate$
DECLARE
  arity integer;
  children text;
BEGIN
  FOR arity IN SELECT (2 ^ k)::integer FROM pg_catalog.generate_series(1, 9) AS k LOOP
    SELECT pg_catalog.string_agg(pg_catalog.format($child$
        UNION ALL
        (SELECT l.id, l.channel, l.payload, l.created_at, l.xid
           FROM :PGWATCH_SCHEMA.notification_log l
          WHERE l.channel = channels[%s]
            AND (l.xid, l.id) > (from_xid, from_id)
            AND l.xid < until_xid
            AND pg_catalog.pg_visible_in_snapshot(l.xid, snapshot)
          ORDER BY l.xid, l.id)$child$, i), '' ORDER BY i)
      INTO children
      FROM pg_catalog.generate_series(1, arity) AS i;
    EXECUTE pg_catalog.format($function$
CREATE FUNCTION :PGWATCH_SCHEMA.%I(
  channels text[], done pg_snapshot, batch pg_snapshot,
  after_xid xid8, after_id bigint, page_size integer, page_bytes bigint
)
RETURNS TABLE (
  page_batch text, page_complete boolean,
  log_id bigint, log_channel text, log_payload jsonb, log_created_at timestamptz, log_xid xid8
)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET jit = off
SET enable_bitmapscan = off
SET enable_seqscan = off
SET search_path = pg_catalog, pg_temp
AS $body$
DECLARE
  snapshot pg_snapshot := coalesce(batch, pg_catalog.pg_current_snapshot());
  -- Part b starts after the position, or at xmax(done) while the position is below it.
  past_done boolean := after_xid >= pg_catalog.pg_snapshot_xmax(done);
  from_xid xid8 := CASE WHEN past_done THEN after_xid ELSE pg_catalog.pg_snapshot_xmax(done) END;
  from_id bigint := CASE WHEN past_done THEN after_id ELSE 0 END;
  until_xid xid8 := pg_catalog.pg_snapshot_xmax(snapshot);
  row_bytes bigint;
  compressed boolean;
  taken integer := 0;
  total bigint := 0;
BEGIN
  page_batch := snapshot::text;
  page_complete := true;
  FOR log_id, log_channel, log_payload, log_created_at, log_xid, row_bytes, compressed IN
    SELECT r.id, r.channel, r.payload, r.created_at, r.xid,
           pg_catalog.pg_column_size(r.payload), pg_catalog.pg_column_compression(r.payload) IS NOT NULL
      FROM (
        (SELECT l.id, l.channel, l.payload, l.created_at, l.xid
           FROM pg_catalog.pg_snapshot_xip(done) AS x(xid)
           CROSS JOIN pg_catalog.unnest(channels) AS c(name)
           CROSS JOIN LATERAL (
             SELECT * FROM :PGWATCH_SCHEMA.notification_log l
              WHERE l.channel = c.name AND l.xid = x.xid
                AND l.id > CASE WHEN x.xid = after_xid THEN after_id ELSE 0 END
                AND pg_catalog.pg_visible_in_snapshot(l.xid, snapshot)
              ORDER BY l.xid, l.id
              LIMIT page_size + 1
           ) AS l
          WHERE x.xid >= after_xid
          ORDER BY l.xid, l.id
          LIMIT page_size + 1)
        %s
      ) AS r
     ORDER BY r.xid, r.id
     LIMIT page_size + 1
  LOOP
    IF taken = page_size THEN
      page_complete := false;
      EXIT;
    END IF;
    IF compressed THEN
      row_bytes := pg_catalog.octet_length(log_payload::text);
    END IF;
    IF taken > 0 AND total + row_bytes > page_bytes THEN
      page_complete := false;
      EXIT;
    END IF;
    total := total + row_bytes;
    taken := taken + 1;
    RETURN NEXT;
  END LOOP;
  log_id := NULL;
  log_channel := NULL;
  log_payload := NULL;
  log_created_at := NULL;
  log_xid := NULL;
  RETURN NEXT;
END
$body$
$function$, 'read_page_' || arity, children);
  END LOOP;
END
$generate$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA :PGWATCH_SCHEMA FROM PUBLIC;

-- Upgrading in place: whoever may read pages with read_batch_page (the consumer group role that
-- `pgwatch grant` set up) may read them with the merges too, so consumers on several channels
-- keep working before `pgwatch grant` is run again.
DO $grant$
DECLARE
  reader regprocedure := pg_catalog.to_regprocedure(pg_catalog.quote_ident(:PGWATCH_SCHEMA_LITERAL)
    || '.read_batch_page(text[], pg_snapshot, pg_snapshot, xid8, bigint, integer, bigint)');
  grantee regrole;
  arity integer;
BEGIN
  FOR grantee IN
    SELECT DISTINCT a.grantee::regrole
      FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) AS a
     WHERE p.oid = reader AND a.privilege_type = 'EXECUTE' AND a.grantee NOT IN (0, p.proowner)
  LOOP
    FOR arity IN SELECT (2 ^ k)::integer FROM pg_catalog.generate_series(1, 9) AS k LOOP
      EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s.%I TO %s',
        pg_catalog.quote_ident(:PGWATCH_SCHEMA_LITERAL), 'read_page_' || arity, grantee);
    END LOOP;
  END LOOP;
END
$grant$;
