-- A mall that left an alliance (issue 12, A1): its shared entries, lots and budget stay in
-- the alliance's schema, so settlement still names it and refunds of its old orders
-- still reach the alliance ledger. A mall may join and leave again: one row per leave.
CREATE TABLE control.alliance_departures (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alliance_id bigint NOT NULL REFERENCES control.alliances (id),
    tenant_id bigint NOT NULL REFERENCES control.tenants (id),
    left_at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL
);
CREATE INDEX alliance_departures_tenant_idx ON control.alliance_departures (tenant_id, id DESC);
CREATE INDEX alliance_departures_alliance_idx ON control.alliance_departures (alliance_id);
