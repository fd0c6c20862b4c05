//! The subcommands beside a local run: `watercooler deploy k8s`
//! ([`crate::deploy`]), `watercooler boss --kubernetes` ([`crate::kube`])
//! and `watercooler verdict` ([`crate::remote`]). A command line whose
//! first word is one of them goes here ([`is_tool`]); any other is a local
//! run ([`crate::cli::Args`]), as before.

use clap::Parser;

use crate::deploy::Target;
use crate::kube::BossArgs;
use crate::remote::VerdictArgs;

/// The subcommands.
#[derive(Debug, Clone, Parser)]
#[command(name = "watercooler", version)]
pub enum Tool {
    /// Renders the network for a cluster engine.
    #[command(subcommand)]
    Deploy(Target),
    /// The Boss inside a Kubernetes cluster (the pod `deploy k8s --boss`
    /// renders runs it).
    Boss(Box<BossArgs>),
    /// The verdict of a network reporting to Sauron: exit 0 converged, 1
    /// not, 2 usage.
    Verdict(VerdictArgs),
}

/// Whether `first`, the first argument, names a subcommand.
pub fn is_tool(first: Option<&str>) -> bool {
    matches!(first, Some("deploy" | "boss" | "verdict"))
}

fn usage(error: String) -> ! {
    <Tool as clap::CommandFactory>::command()
        .error(clap::error::ErrorKind::ValueValidation, error)
        .exit()
}

/// Runs the subcommand of the process's command line; its exit status.
/// Usage errors exit 2 here, before anything is written.
pub fn main() -> i32 {
    let tool = Tool::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match tool {
        Tool::Deploy(Target::K8s(args)) => {
            if let Err(e) = args.check() {
                usage(e);
            }
            let seed = args.seed.unwrap_or_else(rand::random);
            if args.seed.is_none() {
                eprintln!("watercooler deploy k8s: seed {seed} (repeat with --seed {seed})");
            }
            print!("{}", crate::deploy::render(&args, seed));
            0
        }
        Tool::Boss(args) => {
            if let Err(e) = args.check() {
                usage(e);
            }
            runtime(crate::kube::main(*args))
        }
        Tool::Verdict(args) => runtime(crate::remote::main(args)),
    }
}

fn runtime(future: impl std::future::Future<Output = i32>) -> i32 {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(future),
        Err(e) => {
            eprintln!("watercooler: building the runtime: {e}");
            1
        }
    }
}
