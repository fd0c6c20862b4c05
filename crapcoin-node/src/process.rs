//! What both binaries (`crapcoin-node` and `sauron`) do once their server
//! is up: say where on stdout, then wait for the signal to stop.

use std::io::Write;

use anyhow::Context;

/// Prints exactly `listening on URL` as the first stdout line (scripts and
/// tests read the port from it), then resolves on SIGTERM or Ctrl-C.
///
/// # Errors
///
/// When stdout cannot be written or a signal handler cannot be installed.
pub async fn announce_and_wait(listen_url: &str) -> anyhow::Result<()> {
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {listen_url}")?;
        stdout.flush()?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => {}
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
    }
    Ok(())
}
