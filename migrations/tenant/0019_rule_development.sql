-- For the rule developer (issue 13 point 12, SPEC R2, R4, R5, R7).
--
-- * Parameters are versioned like scripts: every change is kept in
--   `rule_param_versions`, `rules.params_version` names the current one (a rollback
--   moves it back), and `rules.params` stays its copy for readers.
-- * Every entry a rule wrote names the parameter version as well as the script version
--   (`entries.params_version`; NULL before this migration and for entries no rule wrote).
-- * A rule can be archived: gone from the active list and never evaluated, kept for
--   history (its versions and the entries naming it), restorable.
-- * What rules see of the member's profile: birthday, gender, city (besides the
--   registration time, nickname and level that the record already held).

CREATE TABLE rule_param_versions (
    rule_id    bigint NOT NULL REFERENCES rules(id),
    version    integer NOT NULL CHECK (version >= 1),
    params     jsonb NOT NULL CHECK (jsonb_typeof(params) = 'object'),
    created_by text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, version)
);

ALTER TABLE rules
    ADD COLUMN params_version integer NOT NULL DEFAULT 1 CHECK (params_version >= 1),
    ADD COLUMN archived_at timestamptz;

-- The parameters each rule has now are its first parameter version.
INSERT INTO rule_param_versions (rule_id, version, params, created_at)
SELECT id, 1, params, updated_at FROM rules;

ALTER TABLE entries ADD COLUMN params_version integer;

ALTER TABLE members
    ADD COLUMN birthday date CHECK (birthday >= DATE '1900-01-01'),
    ADD COLUMN gender text CHECK (gender IN ('female', 'male', 'other')),
    ADD COLUMN city text CHECK (length(city) BETWEEN 1 AND 64);
