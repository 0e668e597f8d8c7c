-- Proven identifiers and session families (issue 10: hardening).
--
-- A member's phone or e-mail counts as theirs only once proven: by a one-time code sent
-- to it, or vouched for by the merchant's own systems (partner API, webview assertion).
-- Unproven identifiers never create or link an alliance identity, and a proven
-- registration of the same identifier releases it from the unproven account
-- (`released_identifier` keeps what it was, for support).
ALTER TABLE members
    ADD COLUMN phone_proven_at timestamptz,
    ADD COLUMN email_proven_at timestamptz,
    ADD COLUMN released_identifier text CHECK (length(released_identifier) <= 254);
ALTER TABLE members DROP CONSTRAINT members_check;
ALTER TABLE members ADD CONSTRAINT members_identifier_check
    CHECK (phone IS NOT NULL OR email IS NOT NULL OR released_identifier IS NOT NULL);

-- Phones are stored in E.164; mainland mobile numbers stored before as 11 digits get +86.
UPDATE members m SET phone = '+86' || m.phone
 WHERE m.phone ~ '^1[3-9][0-9]{9}$'
   AND NOT EXISTS (SELECT 1 FROM members o WHERE o.phone = '+86' || m.phone);

-- What was proven before this migration: a code that was used for the identifier, or a
-- member made by the merchant's systems (external id).
UPDATE members m SET phone_proven_at = m.created_at
 WHERE m.phone IS NOT NULL
   AND (m.external_id IS NOT NULL OR EXISTS (
        SELECT 1 FROM verification_codes c
         WHERE c.consumed_at IS NOT NULL AND c.destination IN (m.phone, substr(m.phone, 4))));
UPDATE members m SET email_proven_at = m.created_at
 WHERE m.email IS NOT NULL
   AND EXISTS (SELECT 1 FROM verification_codes c WHERE c.consumed_at IS NOT NULL AND c.destination = m.email);

-- A signed-in member proves their own phone or e-mail with a `verify` code.
ALTER TABLE verification_codes DROP CONSTRAINT verification_codes_purpose_check;
ALTER TABLE verification_codes ADD CONSTRAINT verification_codes_purpose_check
    CHECK (purpose IN ('login', 'register', 'reset_password', 'verify'));

-- Refresh tokens belong to a family (one sign-in); access tokens name the family, so
-- revoking it ends them on the next request. A used token presented again (reuse)
-- revokes its whole family.
ALTER TABLE member_sessions
    ADD COLUMN family uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN rotated_at timestamptz;
CREATE INDEX member_sessions_family_idx ON member_sessions (family);
