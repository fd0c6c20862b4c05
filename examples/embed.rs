//! # Embedding a CrapCoin node
//!
//! The smallest program that uses `crapcoin-core` as a library: build a
//! node, mine a block to earn coins, transfer some to a second node's
//! address, and print the chain.
//!
//! ```text
//! cargo run --example embed
//! ```
//!
//! A node is assembled with `Node::builder(params)` and started with
//! `launch()`, which returns a `Handle`. Everything else — mining,
//! transfers, reading the chain — goes through the handle. Without a
//! network configured, the node sits alone on its own in-memory network;
//! the `observer` and `simulation` examples connect several.

use crapcoin_core::{Node, Params, Wallet};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // Difficulty 8: a block needs about 256 hashes, so this runs instantly.
    let params = Params::with_difficulty(8);
    let node = Node::builder(params)
        .wallet(Wallet::from_seed(1))
        .launch()
        .await?;
    println!("node {} has address {}", node.name(), node.address());

    // A coinbase-only block pays the miner the block reward.
    let mined = node.mine().await?;
    println!("mined block {} at height {}", mined.hash, mined.height);
    println!("balance: {}", node.balance(&node.address()).balance);

    // Transfer to someone else. The node signs with its wallet, mines a
    // block holding the transfer, and returns once that block is on its
    // best chain.
    let friend = Wallet::from_seed(2).address();
    let included = node.transfer(friend, 20).await?;
    println!(
        "transfer of 20 included in block {} at height {}",
        included.hash, included.height
    );

    println!("\nthe chain, genesis first:");
    for block in node.chain().await {
        let what = match &block.tx {
            Some(tx) => format!(
                "{} -> {}: {} (fee {})",
                tx.from.short(),
                tx.to.short(),
                tx.amount,
                tx.fee
            ),
            None => "coinbase only".to_owned(),
        };
        println!(
            "  #{} {} {}",
            block.header.height,
            block.hash().short(),
            what
        );
    }
    println!(
        "\nbalances: me {} (2 rewards + fee - 21), friend {}",
        node.balance(&node.address()).balance,
        node.balance(&friend).balance
    );

    // Shutdown is explicit and waits for every task of the node.
    node.shutdown().await;
    Ok(())
}
