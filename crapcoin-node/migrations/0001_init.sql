-- Blocks a node accepted, in the canonical binary encoding (the same bytes
-- hashes are computed over), and the peers it knows.
CREATE TABLE IF NOT EXISTS blocks (
    hash   BLOB PRIMARY KEY NOT NULL,
    height INTEGER NOT NULL,
    body   BLOB NOT NULL
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS blocks_by_height ON blocks (height);

CREATE TABLE IF NOT EXISTS peers (
    url TEXT PRIMARY KEY NOT NULL
) WITHOUT ROWID;
