-- The live set: the position of a consumer that takes rows straight from their NOTIFYs
-- (README "How delivery works"). Rows delivered live are handled ahead of `done`: live_xids
-- lists their transactions since `done`, in commit order, every one fully handled but the
-- last, whose rows are handled up to live_after_id. A reader skips these rows when it pages
-- through the log, and drops the xids once `done` covers them. Written with the rest of the
-- position; an installation being upgraded starts with an empty set, which is its position
-- exactly.
ALTER TABLE :PGWATCH_SCHEMA.consumer
  ADD COLUMN live_xids     xid8[] NOT NULL DEFAULT '{}',
  ADD COLUMN live_after_id bigint;
