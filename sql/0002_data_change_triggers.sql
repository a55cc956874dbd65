-- Table triggers that turn INSERT/UPDATE/DELETE into notifications.

-- Row trigger: stores {table, schema, action, id, old_data, new_data, metadata} on the channel
-- given as the trigger's first argument (default data_change). `id` is the row's "id" column,
-- or null for tables without one. metadata carries the app.user_id and app.session_id settings
-- of the writing session (SET LOCAL app.user_id = '42') and the transaction id.
CREATE FUNCTION :PGWATCH_SCHEMA.notify_data_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
  old_row jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
  new_row jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
BEGIN
  PERFORM :PGWATCH_SCHEMA.smart_notify(
    coalesce(TG_ARGV[0], 'data_change'),
    jsonb_build_object(
      'table', TG_TABLE_NAME,
      'schema', TG_TABLE_SCHEMA,
      'action', TG_OP,
      'id', coalesce(new_row, old_row) -> 'id',
      'old_data', old_row,
      'new_data', new_row,
      'metadata', jsonb_build_object(
        'user_id', nullif(current_setting('app.user_id', true), ''),
        'session_id', nullif(current_setting('app.session_id', true), ''),
        'transaction_id', pg_current_xact_id()::text
      )
    )
  );
  RETURN NULL;
END
$$;

-- Add (or replace) the notifying trigger on a table. The trigger is named after the channel,
-- so one table can feed several channels. Names are quoted with format('%I'), never pasted.
CREATE FUNCTION :PGWATCH_SCHEMA.add_data_change_trigger(tbl regclass, channel text DEFAULT 'data_change')
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
  trigger_name text := 'pgwatch_' || channel;
BEGIN
  IF channel !~ '^[A-Za-z_][A-Za-z0-9_$]{0,54}$' THEN
    RAISE EXCEPTION 'pgwatch: invalid channel name %', quote_literal(channel)
      USING HINT = 'A trigger channel starts with a letter or underscore, then letters, digits, _ or $; at most 55 characters.';
  END IF;
  EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', trigger_name, tbl);
  EXECUTE format(
    'CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %s(%L)',
    trigger_name, tbl, ':PGWATCH_SCHEMA.notify_data_change', channel
  );
  RETURN trigger_name;
END
$$;

-- Remove the notifying trigger for `channel` from a table; returns whether one existed.
CREATE FUNCTION :PGWATCH_SCHEMA.remove_data_change_trigger(tbl regclass, channel text DEFAULT 'data_change')
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
  trigger_name text := 'pgwatch_' || channel;
  found boolean;
BEGIN
  SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = tbl AND tgname = trigger_name) INTO found;
  EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', trigger_name, tbl);
  RETURN found;
END
$$;

-- Every table with a notifying trigger of this schema, and its channel.
CREATE VIEW :PGWATCH_SCHEMA.data_change_triggers AS
SELECT t.tgrelid::regclass::text AS table_name,
       t.tgname::text AS trigger_name,
       coalesce(convert_from(substring(t.tgargs FROM 1 FOR position('\x00'::bytea IN t.tgargs) - 1), 'UTF8'), 'data_change') AS channel
FROM pg_trigger t
WHERE t.tgfoid = ':PGWATCH_SCHEMA.notify_data_change()'::regprocedure
  AND NOT t.tgisinternal;
