-- Sauron's store (SQLite). Ids are assigned by Sauron's single writer, so
-- they grow with arrival order and "newest first" is "id descending".
CREATE TABLE requests (
    id INTEGER PRIMARY KEY,
    node TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    route TEXT NOT NULL,
    status INTEGER NOT NULL,
    latency_us INTEGER NOT NULL,
    caller TEXT,
    peer TEXT,
    request_bytes INTEGER NOT NULL,
    response_bytes INTEGER,
    excerpt TEXT NOT NULL
);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    node TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    event TEXT NOT NULL
);

CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    address TEXT NOT NULL,
    behaviour TEXT NOT NULL,
    registered INTEGER NOT NULL,
    fired INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    height INTEGER NOT NULL,
    tip TEXT
);
