//! `sauron`: the CrapCoin tracker, aggregator and dashboard. See `--help`,
//! `docs/sauron.md` and the `crapcoin_node::sauron` module docs.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use crapcoin_node::sauron::cli::Args;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    // One thread, like the node: ingest is mostly waiting on the database.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    runtime.block_on(async {
        let running = crapcoin_node::sauron::start(args.config()).await?;
        {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "listening on {}", running.listen_url())?;
            stdout.flush()?;
        }
        shutdown_signal().await?;
        tracing::info!("shutting down");
        running.shutdown().await;
        Ok(())
    })
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
    }
    Ok(())
}
