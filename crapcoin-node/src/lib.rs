//! The real CrapCoin full node: a warp HTTP server over the
//! `crapcoin-core` engine, a reqwest peer client, sqlx storage, the
//! AllSeeingEye reporter and Sauron. Filled by the crapcoin-node issue.
