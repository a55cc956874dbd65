-- Privileges and the SQL surface (README "Roles and privileges").
--
-- 1. No function of this schema resolves a name through the caller's search_path: a role
--    that can create objects in a schema on that path (everyone in `public` up to
--    PostgreSQL 14) could otherwise plant a better-matching `format`, `unnest`, `to_jsonb`,
--    ... and have it run with the caller's rights. Every function gets
--    `search_path = pg_catalog, pg_temp` and reaches pgwatch's own objects by qualified names.
--    The exception is a SQL function returning a set (read_page): a SET clause would stop it
--    being inlined into next_page's cached plan (sql/0004). It is inlined into, and so parsed
--    with the path of, its pinned caller, and only the owner may call it directly.
-- 2. Producing goes only through SECURITY DEFINER functions (smart_notify, smart_notify_many
--    and the trigger function): producers and writers of a triggered table need no privilege
--    on the log, so they cannot forge a row's xid, created_at or id. Reading goes through
--    next_page, also SECURITY DEFINER, so read_page stays owner-only.
-- 3. Nothing is executable by PUBLIC; `pgwatch grant` hands each role what it needs.
--
-- A later migration that creates a function must pin its search_path, and revoke EXECUTE
-- from PUBLIC (per-schema default privileges cannot revoke it).

-- Removing a trigger validates its channel as adding one does: trigger names are
-- `pgwatch_<channel>`, and PostgreSQL would truncate a longer one to another channel's.
CREATE OR REPLACE FUNCTION :PGWATCH_SCHEMA.remove_data_change_trigger(tbl regclass, channel text DEFAULT 'data_change')
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  trigger_name text := 'pgwatch_' || channel;
  found boolean;
BEGIN
  IF channel !~ '^[A-Za-z_][A-Za-z0-9_$]{0,54}$' THEN
    RAISE EXCEPTION 'pgwatch: invalid channel name %', quote_literal(channel)
      USING HINT = 'A trigger channel starts with a letter or underscore, then letters, digits, _ or $; at most 55 characters.';
  END IF;
  SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = tbl AND tgname = trigger_name) INTO found;
  EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', trigger_name, tbl);
  RETURN found;
END
$$;

-- Forgets waiting registrations whose listen connection is gone (a process that died without
-- unregistering), so producers stop sending NOTIFY for nobody. Run by every process that
-- starts the service, producers included, who have no privilege on the table itself.
CREATE FUNCTION :PGWATCH_SCHEMA.forget_dead_waiters() RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  DELETE FROM :PGWATCH_SCHEMA.waiting w
   WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = w.backend_pid)
$$;

DO $$
DECLARE
  fn regprocedure;
BEGIN
  -- By name, so that whatever signatures earlier migrations left are covered.
  FOR fn IN
    SELECT p.oid FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = pg_catalog.to_regnamespace(:PGWATCH_SCHEMA_LITERAL)
       AND p.proname IN ('smart_notify', 'smart_notify_many', 'notify_data_change', 'next_page')
  LOOP
    EXECUTE pg_catalog.format('ALTER FUNCTION %s SECURITY DEFINER', fn);
  END LOOP;
  -- The readers' cached generic plans (next_page's) are costed on the whole log: past a few
  -- hundred thousand rows the cost passes jit_above_cost, and every read paid ~30-50 ms of JIT
  -- compilation for a query that runs in ~0.2 ms.
  FOR fn IN
    SELECT p.oid FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = pg_catalog.to_regnamespace(:PGWATCH_SCHEMA_LITERAL)
       AND 'plan_cache_mode=force_generic_plan' = ANY (p.proconfig)
  LOOP
    EXECUTE pg_catalog.format('ALTER FUNCTION %s SET jit = off', fn);
  END LOOP;
  FOR fn IN
    SELECT p.oid FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = pg_catalog.to_regnamespace(:PGWATCH_SCHEMA_LITERAL)
       AND NOT (p.prolang = (SELECT l.oid FROM pg_catalog.pg_language l WHERE l.lanname = 'sql') AND p.proretset)
  LOOP
    EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', fn);
  END LOOP;
END
$$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA :PGWATCH_SCHEMA FROM PUBLIC;
