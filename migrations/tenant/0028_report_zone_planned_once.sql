-- The mall's time zone, read by the analytics triggers on every write (three times for a
-- redemption). As a SQL function its query was planned anew on each call from a trigger
-- (pg_stat_statements, a flash sale: about two plans for every three calls); as PL/pgSQL
-- its plan is kept for the connection. Same answer: the mall's settings, Asia/Shanghai
-- when none is stored, NULL outside a mall's schema.
CREATE OR REPLACE FUNCTION report_zone() RETURNS text
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN (SELECT COALESCE(t.settings->>'time_zone', 'Asia/Shanghai')
            FROM control.tenants t WHERE t.schema_name = current_schema());
END $$;
