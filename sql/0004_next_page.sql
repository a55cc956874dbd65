-- read_page as a plain SQL function was inlined into the reader's query and planned again on
-- every read: ~0.8 ms of planning per wake-up, most of a live delivery's latency and of the
-- server time a busy reader takes from writers. next_page is PL/pgSQL, so its query is
-- prepared once per connection and, forced generic, never planned again.
--
-- It also takes the batch snapshot itself (null: start a new batch at the current snapshot)
-- and returns it with every row, or alone in an all-null row when the page is empty.
CREATE FUNCTION :PGWATCH_SCHEMA.next_page(
  channels text[], done pg_snapshot, batch pg_snapshot,
  after_xid xid8, after_id bigint, page_size integer
)
RETURNS TABLE (page_batch text, log_id bigint, log_channel text, log_payload jsonb, log_created_at timestamptz, log_xid xid8)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  snapshot pg_snapshot := coalesce(batch, pg_current_snapshot());
BEGIN
  RETURN QUERY
    SELECT snapshot::text, r.id, r.channel, r.payload, r.created_at, r.xid
      FROM :PGWATCH_SCHEMA.read_page(channels, done, snapshot, after_xid, after_id, page_size) AS r;
  IF NOT FOUND THEN
    page_batch := snapshot::text;
    RETURN NEXT;
  END IF;
END
$$;
