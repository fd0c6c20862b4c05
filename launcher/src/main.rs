//! `watercooler`: starts and steers a CrapCoin sandbox network. See
//! `watercooler --help` and the `crapcoin_launcher` crate docs.

use clap::Parser as _;
use crapcoin_launcher::app::{self, EXIT_USAGE};
use crapcoin_launcher::cli::Args;
use crapcoin_launcher::ui::Ui;
use tracing_subscriber::EnvFilter;

fn main() {
    // `watercooler deploy|boss|verdict ...`: the subcommands.
    let first = std::env::args().nth(1);
    if crapcoin_launcher::tools::is_tool(first.as_deref()) {
        std::process::exit(crapcoin_launcher::tools::main());
    }
    // clap prints usage errors and exits with status 2.
    let args = Args::parse();
    if let Err(e) = args.check() {
        <Args as clap::CommandFactory>::command()
            .error(clap::error::ErrorKind::ArgumentConflict, e)
            .exit();
    }
    let ui = Ui::new(args.plain);
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(ui.log_writer())
        .with_ansi(ui.interactive())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("watercooler: building the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(app::run(args, ui)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("watercooler: {e:#}");
            EXIT_USAGE
        }
    };
    // Stdin's reader thread may be blocked in read(2): do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}
