-- The wake-up that also says "look at the redelivery table": sent by re-drives and replays,
-- so a running consumer picks them up at once instead of at its next poll.
CREATE FUNCTION :PGWATCH_SCHEMA.redelivery_wake_payload() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT json_build_object('pgwatch', 1, 'schema', :PGWATCH_SCHEMA_LITERAL, 'redelivery', true)::text $$;
