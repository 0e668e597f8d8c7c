-- Saved member segments (SPEC M5, issue 13 point 10) and the merchant's messages to
-- its members (SPEC K6, issue 13 point 5).
--
-- A segment is a named member filter (level, tag, inactivity, balance range,
-- registration days); it is evaluated when used, so it always means "who matches now".
CREATE TABLE segments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    filter      jsonb NOT NULL CHECK (jsonb_typeof(filter) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A message the merchant writes once for all members or a segment, sent at `send_at`
-- (the jobs loop sends due ones). Sending writes one row per recipient into `messages`
-- in one transaction, with the broadcast's id, so read counts are a count over those.
CREATE TABLE broadcasts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 2000),
    -- NULL: every active member. The filter is copied here when the broadcast is
    -- written, so editing or deleting the segment later does not change who gets it.
    segment_id  bigint REFERENCES segments(id) ON DELETE SET NULL,
    filter      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(filter) = 'object'),
    send_at     timestamptz NOT NULL,
    status      text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'sent', 'cancelled')),
    recipients  integer CHECK (recipients >= 0),
    sent_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'sent') = (sent_at IS NOT NULL AND recipients IS NOT NULL))
);
CREATE INDEX broadcasts_due_idx ON broadcasts (send_at) WHERE status = 'scheduled';

ALTER TABLE messages ADD COLUMN broadcast_id bigint REFERENCES broadcasts(id);
CREATE INDEX messages_broadcast_idx ON messages (broadcast_id) WHERE broadcast_id IS NOT NULL;
CREATE INDEX messages_unread_idx ON messages (member_id) WHERE read_at IS NULL;
CREATE INDEX members_created_idx ON members (created_at);
CREATE INDEX members_level_idx ON members (level_id);
