-- Sauron's store (PostgreSQL). Ids are assigned by Sauron's single writer, so
-- they grow with arrival order and "newest first" is "id descending".
CREATE TABLE requests (
    id BIGINT PRIMARY KEY,
    node TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    route TEXT NOT NULL,
    status BIGINT NOT NULL,
    latency_us BIGINT NOT NULL,
    caller TEXT,
    peer TEXT,
    request_bytes BIGINT NOT NULL,
    response_bytes BIGINT,
    excerpt TEXT NOT NULL
);

CREATE TABLE events (
    id BIGINT PRIMARY KEY,
    node TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    event TEXT NOT NULL
);

CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    address TEXT NOT NULL,
    behaviour TEXT NOT NULL,
    registered BIGINT NOT NULL,
    fired BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    height BIGINT NOT NULL,
    tip TEXT
);
