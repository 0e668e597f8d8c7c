-- Content (SPEC K5, issue 13 point 4): banners, announcements, themed zones and rule
-- pages, each written in one language (zh-CN or en). Items of one kind that share a
-- `key` are translations of each other: members read the version in their language,
-- else the one in the mall's. Staff write drafts, submit them for review, and a
-- reviewer publishes them; members see only published items inside their window.
CREATE TABLE content_items (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('banner', 'announcement', 'zone', 'page')),
    key          text NOT NULL CHECK (key ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    locale       text NOT NULL CHECK (locale IN ('zh-CN', 'en')),
    state        text NOT NULL DEFAULT 'draft'
                 CHECK (state IN ('draft', 'pending_review', 'published', 'archived')),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 100),
    -- An announcement's text, a zone's description, a rule page's Markdown.
    body         text NOT NULL DEFAULT '' CHECK (length(body) <= 20000),
    -- A rule page's Markdown rendered and sanitised when it was written.
    html         text NOT NULL DEFAULT '',
    image_url    text CHECK (length(image_url) <= 2048),
    link         text CHECK (length(link) <= 2048),
    -- A zone's products, in the order members see them.
    product_ids  bigint[] NOT NULL DEFAULT '{}' CHECK (cardinality(product_ids) <= 100),
    pinned       boolean NOT NULL DEFAULT false,
    sort_order   integer NOT NULL DEFAULT 0,
    starts_at    timestamptz,
    ends_at      timestamptz,
    -- The last review: who submitted, who published or sent it back, and why.
    submitted_by bigint,
    submitted_at timestamptz,
    reviewed_by  bigint,
    reviewed_at  timestamptz,
    review_note  text NOT NULL DEFAULT '' CHECK (length(review_note) <= 500),
    published_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at)
);
-- One live item per kind, key and language (archived ones are history).
CREATE UNIQUE INDEX content_items_key_key ON content_items (kind, key, locale) WHERE state <> 'archived';
CREATE INDEX content_items_published_idx ON content_items (kind, key) WHERE state = 'published';
