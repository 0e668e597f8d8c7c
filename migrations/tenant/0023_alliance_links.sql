-- Linking accounts (issue 12, A2): a member with accounts in two malls of an alliance
-- links them by proving both (signed in at one; a `link` code sent to the other's proven
-- phone or e-mail, or its password).
ALTER TABLE verification_codes DROP CONSTRAINT verification_codes_purpose_check;
ALTER TABLE verification_codes ADD CONSTRAINT verification_codes_purpose_check
    CHECK (purpose IN ('login', 'register', 'reset_password', 'verify', 'link'));

-- In an alliance schema (whose `members` are the alliance's identities): an identity
-- merged into another by a link. Its entries and lots stay (history); its balance moved
-- to the identity it was merged into, and a lookup by its proven phone or e-mail finds
-- that one. Unused in a mall's schema.
ALTER TABLE members ADD COLUMN merged_into bigint REFERENCES members (id);
