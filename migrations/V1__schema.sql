-- iot-api schema. Every table leads its primary key with tenant_id, and every foreign key
-- includes it, so a row can only ever point at rows of its own tenant (and the schema can be
-- distributed by tenant_id).
--
-- Row-level security is the second wall behind the service's own WHERE tenant_id = ...:
-- the service works as the role iot_app (it switches to it inside every transaction, even when
-- it connects as a superuser), and the policies bind iot_app to the tenant it sets in
-- app.tenant_id for that transaction.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'iot_app') THEN
        CREATE ROLE iot_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
END
$$;

-- The connecting role must be allowed to SET ROLE iot_app (a superuser always is).
GRANT iot_app TO CURRENT_USER;

CREATE TABLE devices (
    tenant_id                text             NOT NULL,
    id                       uuid             NOT NULL,
    name                     text             NOT NULL,
    unit                     text             NOT NULL DEFAULT '',
    status                   text             NOT NULL DEFAULT 'disconnected'
                             CHECK (status IN ('connected', 'disconnected', 'error')),
    site_id                  text,
    device_type              text,
    threshold_warning_lower  double precision,
    threshold_warning_upper  double precision,
    threshold_critical_lower double precision,
    threshold_critical_upper double precision,
    created_at               timestamptz      NOT NULL DEFAULT now(),
    updated_at               timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT devices_name_key UNIQUE (tenant_id, name)
);

CREATE TABLE device_groups (
    tenant_id   text        NOT NULL,
    id          uuid        NOT NULL,
    group_id    text        NOT NULL,
    name        text        NOT NULL,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT device_groups_group_id_key UNIQUE (tenant_id, group_id),
    CONSTRAINT device_groups_name_key UNIQUE (tenant_id, name)
);

CREATE TABLE device_group_members (
    tenant_id  text        NOT NULL,
    group_id   uuid        NOT NULL,
    device_id  uuid        NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, group_id, device_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES device_groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, id) ON DELETE CASCADE
);
-- "Which groups is this device in", and the cascade from a deleted device.
CREATE INDEX device_group_members_device_idx ON device_group_members (tenant_id, device_id);

CREATE TABLE readings (
    tenant_id text             NOT NULL,
    device_id uuid             NOT NULL,
    ts        timestamptz      NOT NULL,
    value     double precision NOT NULL,
    PRIMARY KEY (tenant_id, device_id, ts),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, id) ON DELETE CASCADE
);

-- The newest reading of each device, kept by every ingest path in the same transaction, so that
-- alert summaries never scan the readings table.
CREATE TABLE latest_readings (
    tenant_id text             NOT NULL,
    device_id uuid             NOT NULL,
    ts        timestamptz      NOT NULL,
    value     double precision NOT NULL,
    PRIMARY KEY (tenant_id, device_id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE maintenance_windows (
    tenant_id    text        NOT NULL,
    window_id    text        NOT NULL,
    name         text        NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz,
    recurring    jsonb,
    site_ids     text[],
    device_types text[],
    enabled      boolean     NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, window_id),
    CONSTRAINT maintenance_windows_schedule_check CHECK (ends_at IS NULL OR ends_at > starts_at)
);

GRANT USAGE ON SCHEMA public TO iot_app;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['devices', 'device_groups', 'device_group_members', 'readings',
                             'latest_readings', 'maintenance_windows']
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO iot_app', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I TO iot_app '
            'USING (tenant_id = current_setting(''app.tenant_id'', true)) '
            'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
    END LOOP;
END
$$;
