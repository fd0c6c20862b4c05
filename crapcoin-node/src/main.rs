//! `crapcoin-node`: a CrapCoin full node over HTTP. See `--help` and the
//! `crapcoin_node` crate docs.

use std::io::IsTerminal;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _};
use crapcoin_node::cli::Args;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let matches = Args::command().get_matches();
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let token_on_argv = matches.value_source("admin_token") == Some(ValueSource::CommandLine);
    if args.list_behaviours {
        print!("{}", crapcoin_node::cli::behaviour_list());
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or pipe gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if token_on_argv {
        tracing::warn!(
            "--admin-token on the command line is deprecated: every user of this machine \
             can read it with `ps`; set CRAPCOIN_ADMIN_TOKEN or use --admin-token-file"
        );
    }
    let mut runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(args.threads);
        builder
    };
    let runtime = runtime
        .enable_all()
        .build()
        .context("building the runtime")?;
    runtime.block_on(async {
        let running = crapcoin_node::run::start(args.node_config()).await?;
        crapcoin_node::process::announce_and_wait(&running.listen_url()).await?;
        tracing::info!("shutting down");
        running.shutdown().await;
        Ok(())
    })
}
