-- First schema migration, in dbmate format (https://github.com/amacneil/dbmate).
-- Run with:  dbmate --url "$DATABASE_URL" --migrations-dir migrations up
-- dbmate records applied versions in its own schema_migrations table.

-- migrate:up
CREATE TABLE app_settings (
    key         text PRIMARY KEY,
    value       jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE app_settings IS 'Runtime settings the application may change without a release.';

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    subject     text,
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX audit_log_occurred_at_idx ON audit_log (occurred_at DESC);

-- migrate:down
DROP TABLE audit_log;
DROP TABLE app_settings;
