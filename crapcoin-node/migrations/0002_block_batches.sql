-- Blocks are stored in batches: one row per save (a sync page, or one
-- gossiped or mined block), holding the blocks' canonical encodings back to
-- back, parents before children, and how many there are.
--
-- A row per block cost about 5 µs of CPU per block on the machines
-- measured (binding three values per row, parsing a large multi-row
-- INSERT, and a random insert into the unique hash index); a row per page
-- costs about 1.6 µs, most of it writing the bytes. Nothing reads a block
-- from the database by hash or height: a node keeps its chain in memory and
-- reads the table once, in order, when it starts. Duplicates, which the
-- hash index used to refuse, are dropped when the store is read.
CREATE TABLE block_batches (
    id    INTEGER PRIMARY KEY,
    count INTEGER NOT NULL,
    body  BLOB NOT NULL
);

-- Blocks a node stored before this migration keep their order, one row each.
INSERT INTO block_batches (count, body) SELECT 1, body FROM blocks ORDER BY id;

DROP TABLE blocks;
