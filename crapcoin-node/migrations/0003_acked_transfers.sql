-- Transfers the node acknowledged (POST /transactions, POST /transfer, its
-- own auto mode), each stored before the caller was answered, so that a node
-- killed with SIGKILL before mining one still has it when it starts again
-- (and puts it back into its mempool unless it is on the chain by then).
--
-- `seq` is the record's cursor (GET /transfers/acknowledged?after=SEQ):
-- AUTOINCREMENT so a number is never given twice, even after the oldest
-- rows are pruned (the store keeps at most a million). `body` is the
-- transaction's canonical binary encoding, signature included; `txid` its
-- id, stored to be listed without decoding.
CREATE TABLE acked_transfers (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    txid            BLOB NOT NULL,
    acknowledged_ms INTEGER NOT NULL,
    body            BLOB NOT NULL
);
