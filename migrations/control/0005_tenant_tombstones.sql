-- Deleted malls (SPEC T2, issue 13 point 9): the directory row goes with the schema, the
-- slug stays here so that no new mall (created or imported) can take it.
CREATE TABLE control.tenant_tombstones (
    slug        text PRIMARY KEY,
    tenant_id   bigint NOT NULL,
    name        text NOT NULL,
    deleted_at  timestamptz NOT NULL DEFAULT now(),
    deleted_by  text NOT NULL DEFAULT ''
);

CREATE FUNCTION control.tenants_slug_not_tombstoned() RETURNS trigger LANGUAGE plpgsql
SET search_path = control AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM control.tenant_tombstones WHERE slug = NEW.slug) THEN
        RAISE EXCEPTION 'the slug % belonged to a deleted mall', NEW.slug
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'tenants_slug_tombstoned';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER tenants_slug_not_tombstoned BEFORE INSERT OR UPDATE OF slug ON control.tenants
    FOR EACH ROW EXECUTE FUNCTION control.tenants_slug_not_tombstoned();
