-- Pages bounded by bytes as well as rows. A page of up to page_size rows had no byte limit:
-- a backlog of large payloads filled a reader's heap with one page, and the crash repeated on
-- every restart. read_batch_page stops a page before its payloads pass page_bytes; a row larger
-- than that comes alone. A payload's size is its stored size, or, when it is stored compressed
-- (which hides how big it is), the length of its text.
--
-- A page cut short by bytes is short but not the batch's end, so the page ends in a marker
-- row (log_id null) that says whether the batch is finished: the reader no longer guesses it
-- from the row count.
--
-- Like next_page (0004) it is PL/pgSQL so that its query is prepared once per connection and,
-- forced generic, never planned again; the query is read_page's (0001) written out, so that it
-- does not depend on read_page staying inlinable. Its search_path is pinned and every call
-- qualified. The loop sizes a row only after it takes it: compressed rows past the cut are
-- never turned into text.
CREATE FUNCTION :PGWATCH_SCHEMA.read_batch_page(
  channels text[], done pg_snapshot, batch pg_snapshot,
  after_xid xid8, after_id bigint, page_size integer, page_bytes bigint
)
RETURNS TABLE (
  page_batch text, page_complete boolean,
  log_id bigint, log_channel text, log_payload jsonb, log_created_at timestamptz, log_xid xid8
)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  snapshot pg_snapshot := coalesce(batch, pg_catalog.pg_current_snapshot());
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
      FROM pg_catalog.unnest(channels) AS c(name)
      CROSS JOIN LATERAL (
        (SELECT l.id, l.channel, l.payload, l.created_at, l.xid
           FROM pg_catalog.pg_snapshot_xip(done) AS x(xid)
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
        UNION ALL
        (SELECT l.id, l.channel, l.payload, l.created_at, l.xid
           FROM :PGWATCH_SCHEMA.notification_log l
          WHERE l.channel = c.name
            AND (l.xid, l.id) > (
              CASE WHEN after_xid >= pg_catalog.pg_snapshot_xmax(done) THEN after_xid ELSE pg_catalog.pg_snapshot_xmax(done) END,
              CASE WHEN after_xid >= pg_catalog.pg_snapshot_xmax(done) THEN after_id ELSE 0 END)
            AND l.xid < pg_catalog.pg_snapshot_xmax(snapshot)
            AND pg_catalog.pg_visible_in_snapshot(l.xid, snapshot)
          ORDER BY l.xid, l.id
          LIMIT page_size + 1)
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
  -- The marker: the batch snapshot and whether this page finished it.
  log_id := NULL;
  log_channel := NULL;
  log_payload := NULL;
  log_created_at := NULL;
  log_xid := NULL;
  RETURN NEXT;
END
$$;
