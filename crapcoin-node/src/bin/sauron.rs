//! `sauron`: the CrapCoin tracker, aggregator and dashboard. See `--help`,
//! `docs/sauron.md` and the `crapcoin_node::sauron` module docs.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Parser;
use crapcoin_node::sauron::cli::Args;
use crapcoin_node::sauron::replay::Log;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or pipe gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // A replay's log is checked whole before anything is served.
    let log = match &args.replay {
        Some(path) => match Log::load(path, args.replay_max_events, args.max_nodes) {
            Ok(log) => {
                tracing::info!(path = %path.display(), entries = log.len(), end_ms = log.end_ms(), "replaying");
                Some(log)
            }
            Err(e) => {
                eprintln!("sauron: {}: {e}", path.display());
                std::process::exit(2);
            }
        },
        None => None,
    };
    // One thread, like the node: ingest is mostly waiting on the database.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    runtime.block_on(async {
        let running = match log {
            Some(log) => crapcoin_node::sauron::start_replay(args.config(), log).await?,
            None => crapcoin_node::sauron::start(args.config()).await?,
        };
        crapcoin_node::process::announce_and_wait(&running.listen_url()).await?;
        tracing::info!("shutting down");
        running.shutdown().await;
        Ok(())
    })
}
