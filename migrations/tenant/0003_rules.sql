-- Earn rules as scripts (SPEC R1-R7), the events they run on, member tags and counters.

CREATE TABLE rules (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    -- The event type the rule runs on; '*' for every event.
    event_type      text NOT NULL CHECK (event_type ~ '^([a-z][a-z0-9_]{0,63}|\*)$'),
    enabled         boolean NOT NULL DEFAULT true,
    -- Rules of an event run in ascending position (then id).
    position        integer NOT NULL DEFAULT 100,
    current_version integer NOT NULL CHECK (current_version >= 1),
    -- Parameters edited without touching the script (R4).
    params          jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(params) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Every version is kept (R5).
CREATE TABLE rule_versions (
    rule_id    bigint NOT NULL REFERENCES rules(id),
    version    integer NOT NULL CHECK (version >= 1),
    script     text NOT NULL,
    created_by text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, version)
);

-- Every event received, with what the rules made of it.
CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The sender's id: the same id is processed once.
    event_key   text NOT NULL UNIQUE CHECK (length(event_key) BETWEEN 1 AND 200),
    type        text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_]{0,63}$'),
    member_id   bigint NOT NULL REFERENCES members(id),
    data        jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,
    status      text NOT NULL CHECK (status IN ('applied', 'denied', 'failed')),
    -- What each rule returned: [{"rule_id", "version", "effects"}], or the error.
    effects     jsonb NOT NULL DEFAULT '[]'::jsonb,
    error       text,
    depth       integer NOT NULL DEFAULT 0
);
CREATE INDEX events_member_idx ON events (member_id, id DESC);
CREATE INDEX events_failed_idx ON events (id DESC) WHERE status = 'failed';

-- Per-day counts of each event type per member (today, week, lifetime, streaks).
CREATE TABLE event_days (
    member_id bigint NOT NULL REFERENCES members(id),
    type      text NOT NULL,
    day       date NOT NULL,
    count     integer NOT NULL CHECK (count >= 0),
    PRIMARY KEY (member_id, type, day)
);

CREATE TABLE member_counters (
    member_id  bigint NOT NULL REFERENCES members(id),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    value      bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (member_id, name)
);

CREATE TABLE member_tags (
    member_id  bigint NOT NULL REFERENCES members(id),
    tag        text NOT NULL CHECK (length(tag) BETWEEN 1 AND 64),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (member_id, tag)
);
CREATE INDEX member_tags_tag_idx ON member_tags (tag);
