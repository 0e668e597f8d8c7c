-- At most 100 live API keys per tenant, enforced by the database (issue 11): the trigger
-- locks the tenant's directory row first, so concurrent creations are counted one after
-- another.
CREATE FUNCTION control.api_keys_per_tenant_max() RETURNS trigger LANGUAGE plpgsql
SET search_path = control AS $$
BEGIN
    PERFORM 1 FROM control.tenants WHERE id = NEW.tenant_id FOR UPDATE;
    IF (SELECT count(*) FROM control.api_keys WHERE tenant_id = NEW.tenant_id AND revoked_at IS NULL) >= 100 THEN
        RAISE EXCEPTION 'at most 100 live API keys per tenant'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'api_keys_per_tenant_max';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER api_keys_per_tenant_max BEFORE INSERT ON control.api_keys
    FOR EACH ROW EXECUTE FUNCTION control.api_keys_per_tenant_max();
