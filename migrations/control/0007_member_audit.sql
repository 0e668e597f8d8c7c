-- A member's own act that concerns two malls (linking their accounts in two malls of an
-- alliance, issue 12 A2) is recorded in both malls' audit logs, the member as actor.
ALTER TABLE control.audit_log DROP CONSTRAINT audit_log_actor_kind_check;
ALTER TABLE control.audit_log ADD CONSTRAINT audit_log_actor_kind_check
    CHECK (actor_kind IN ('staff', 'cli', 'system', 'partner', 'member'));
