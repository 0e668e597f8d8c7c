-- Address bounds enforced by the database (issue 11): at most 20 addresses per member and
-- one default, however many requests race. The trigger locks the member's row first, so
-- concurrent inserts for one member are counted one after another.
UPDATE addresses a SET is_default = false
 WHERE is_default AND id <> (SELECT max(id) FROM addresses b WHERE b.member_id = a.member_id AND b.is_default);
CREATE UNIQUE INDEX addresses_one_default_idx ON addresses (member_id) WHERE is_default;

CREATE FUNCTION addresses_per_member_max() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM 1 FROM members WHERE id = NEW.member_id FOR UPDATE;
    IF (SELECT count(*) FROM addresses WHERE member_id = NEW.member_id) >= 20 THEN
        RAISE EXCEPTION 'at most 20 addresses per member'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'addresses_per_member_max';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER addresses_per_member_max BEFORE INSERT ON addresses
    FOR EACH ROW EXECUTE FUNCTION addresses_per_member_max();
