//! Loads attacker plugins: `cdylib` crates that export a
//! [`Declaration`] through
//! [`export_plugin!`](crate::export_plugin).
//!
//! [`Plugin::open`] checks, in this order, before anything else of the
//! plugin runs: that the file exists, that it is a loadable library, that it
//! exports [`SYMBOL`], the [`MAGIC`] number, the [`ABI_VERSION`], then the
//! rustc and `crapcoin-core` versions it was built with against this
//! node's. Each failure is a [`LoadError`] naming the file and what
//! differs. [`Plugin::construct`] then builds behaviours; each one holds the
//! library (an `Arc<Library>`), so the code stays mapped as long as any
//! object from it lives.
//!
//! ```no_run
//! let behaviour = behaviours::loader::load("target/debug/libattacker_plugin.so", 7)?;
//! println!("loaded {}", behaviour.name());
//! # Ok::<(), behaviours::loader::LoadError>(())
//! ```
//!
//! This is the only module with `unsafe` code: loading a library runs
//! foreign code, and what a plugin hands over is trusted only after the
//! checks above. Each `unsafe` block says why it is sound.
#![allow(
    unsafe_code,
    reason = "loading a dynamic library and taking a pointer from it is unsafe by nature"
)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crapcoin_core::behaviour::{Action, AutoAction};
use crapcoin_core::network::Outgoing;
use crapcoin_core::{Behaviour, Block, BlockHeader, Context, PeerUrl, Status, Transaction};
use libloading::Library;
use rand::RngCore;

use crate::plugin::{
    ABI_VERSION, CORE_VERSION, Construct, Constructed, Declaration, MAGIC, RUSTC_VERSION, SYMBOL,
};

/// Why a plugin was not loaded. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Nothing at that path.
    #[error("plugin {}: no such file", path.display())]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The file is not a dynamic library this platform can load.
    #[error("plugin {}: not a loadable library: {detail}", path.display())]
    NotALibrary {
        /// The file.
        path: PathBuf,
        /// What the platform's loader said.
        detail: String,
    },
    /// The library does not export a plugin declaration.
    #[error(
        "plugin {}: no plugin declaration (symbol {symbol} not exported); build it with behaviours::export_plugin!",
        path.display()
    )]
    NoDeclaration {
        /// The file.
        path: PathBuf,
        /// The symbol looked for.
        symbol: &'static str,
    },
    /// The declaration does not start with the magic number.
    #[error(
        "plugin {}: bad magic number {found:#018x}, expected {expected:#018x}: not a CrapCoin plugin",
        path.display()
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// What it holds.
        found: u64,
        /// [`MAGIC`].
        expected: u64,
    },
    /// The declaration's layout or contract is of another loader version.
    #[error(
        "plugin {}: loader ABI version {found}, this node loads version {expected}",
        path.display()
    )]
    AbiMismatch {
        /// The file.
        path: PathBuf,
        /// The plugin's.
        found: u32,
        /// This node's ([`ABI_VERSION`]).
        expected: u32,
    },
    /// The plugin was built by another compiler.
    #[error(
        "plugin {}: built with {found:?}, this node with {expected:?}; rebuild the plugin with the node's toolchain",
        path.display()
    )]
    RustcMismatch {
        /// The plugin's rustc.
        found: String,
        /// This node's rustc.
        expected: String,
        /// The file.
        path: PathBuf,
    },
    /// The plugin was built against another `crapcoin-core`.
    #[error(
        "plugin {}: built against crapcoin-core {found}, this node runs crapcoin-core {expected}",
        path.display()
    )]
    CoreMismatch {
        /// The plugin's core version.
        found: String,
        /// This node's.
        expected: String,
        /// The file.
        path: PathBuf,
    },
    /// The plugin's constructor panicked (caught inside the plugin).
    #[error("plugin {}: its constructor panicked", path.display())]
    ConstructorPanicked {
        /// The file.
        path: PathBuf,
    },
}

/// A checked plugin, ready to construct behaviours.
#[derive(Clone)]
pub struct Plugin {
    path: PathBuf,
    name: String,
    version: String,
    construct: Construct,
    /// Keeps the code behind `construct` mapped; `None` for a declaration
    /// linked into this program.
    library: Option<Arc<Library>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Checks a declaration's fixed fields against this build, in order.
fn check(declaration: &Declaration, path: &Path) -> Result<(), LoadError> {
    let path = path.to_path_buf();
    if declaration.magic != MAGIC {
        return Err(LoadError::BadMagic {
            path,
            found: declaration.magic,
            expected: MAGIC,
        });
    }
    if declaration.abi_version != ABI_VERSION {
        return Err(LoadError::AbiMismatch {
            path,
            found: declaration.abi_version,
            expected: ABI_VERSION,
        });
    }
    let rustc = declaration.rustc_version.to_string_lossy();
    if rustc != RUSTC_VERSION {
        return Err(LoadError::RustcMismatch {
            found: rustc,
            expected: RUSTC_VERSION.to_owned(),
            path,
        });
    }
    let core = declaration.core_version.to_string_lossy();
    if core != CORE_VERSION {
        return Err(LoadError::CoreMismatch {
            found: core,
            expected: CORE_VERSION.to_owned(),
            path,
        });
    }
    Ok(())
}

impl Plugin {
    /// Loads the library at `path` and checks its declaration.
    ///
    /// # Errors
    ///
    /// [`LoadError`]: missing file, not a library, no declaration, or a
    /// magic, ABI, rustc or core version that differs from this node's.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(LoadError::NotFound { path });
        }
        // An absolute path: a bare file name would make the platform loader
        // search its library directories instead of opening this file.
        let absolute = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        // SAFETY: loading a library runs its initialisers. A file that is
        // not a library is refused by the platform loader before any code
        // runs; a library is foreign code we chose to trust by loading it,
        // and Rust cdylibs have no initialisers beyond the platform's.
        let library = unsafe { Library::new(&absolute) }.map_err(|e| LoadError::NotALibrary {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        // SAFETY: the symbol is only used as an address here; what it
        // points at is read below field by field, each read only after the
        // previous field said the layout is ours.
        let symbol = unsafe { library.get::<*const Declaration>(SYMBOL.as_bytes()) };
        let address: *const Declaration = match symbol {
            Ok(symbol) => *symbol,
            Err(_) => {
                return Err(LoadError::NoDeclaration {
                    path,
                    symbol: SYMBOL,
                });
            }
        };
        if address.is_null() {
            return Err(LoadError::NoDeclaration {
                path,
                symbol: SYMBOL,
            });
        }
        // SAFETY: `address` is a non-null exported symbol of a library we
        // keep loaded; its first eight bytes are the magic number in every
        // ABI version, so reading a `u64` there is in bounds for any
        // declaration (`read_unaligned`: a foreign symbol may be unaligned).
        let magic = unsafe { address.cast::<u64>().read_unaligned() };
        if magic != MAGIC {
            return Err(LoadError::BadMagic {
                path,
                found: magic,
                expected: MAGIC,
            });
        }
        // SAFETY: the magic number says this is a CrapCoin declaration; in
        // every ABI version its second field is the `u32` ABI version right
        // after the magic, so this read is in bounds.
        let abi = unsafe { address.cast::<u64>().add(1).cast::<u32>().read_unaligned() };
        if abi != ABI_VERSION {
            return Err(LoadError::AbiMismatch {
                path,
                found: abi,
                expected: ABI_VERSION,
            });
        }
        // SAFETY: magic and ABI version match ours, so the symbol is a
        // `Declaration` of exactly this layout (plain data and one function
        // pointer: valid for any bit pattern the plugin's const could
        // produce), alive while `library` is.
        let declaration: Declaration = unsafe { address.read_unaligned() };
        check(&declaration, &path)?;
        Ok(Self {
            name: declaration.plugin_name.to_string_lossy(),
            version: declaration.plugin_version.to_string_lossy(),
            construct: declaration.construct,
            library: Some(Arc::new(library)),
            path,
        })
    }

    /// A plugin whose declaration is linked into this program (a plugin
    /// crate used as an ordinary dependency, or a test), checked like a
    /// loaded one.
    ///
    /// # Errors
    ///
    /// [`LoadError`] for a magic, ABI, rustc or core version that differs.
    pub fn linked(declaration: &'static Declaration) -> Result<Self, LoadError> {
        let path = PathBuf::from("(linked in)");
        check(declaration, &path)?;
        Ok(Self {
            name: declaration.plugin_name.to_string_lossy(),
            version: declaration.plugin_version.to_string_lossy(),
            construct: declaration.construct,
            library: None,
            path,
        })
    }

    /// Where the plugin was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The plugin crate's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin crate's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Builds the plugin's behaviour with `seed`. The behaviour keeps the
    /// library loaded for as long as it lives.
    ///
    /// # Errors
    ///
    /// [`LoadError::ConstructorPanicked`].
    pub fn construct(&self, seed: u64) -> Result<Arc<dyn Behaviour>, LoadError> {
        // SAFETY: `open` or `linked` checked magic, ABI, rustc and core
        // versions, so `construct` has the `Construct` contract, and the
        // library it lives in is held by `self`. It catches panics itself.
        let raw = unsafe { (self.construct)(seed) };
        if raw.is_null() {
            return Err(LoadError::ConstructorPanicked {
                path: self.path.clone(),
            });
        }
        // SAFETY: a non-null result is `Box::into_raw` of a
        // `Box<Constructed>` made by the same compiler against the same core
        // (checked), with the same global allocator (the system's, as no
        // plugin of ours sets another); it is taken back exactly once.
        let behaviour: Box<Constructed> = unsafe { Box::from_raw(raw) };
        Ok(Arc::new(Loaded {
            behaviour: *behaviour,
            _library: self.library.clone(),
        }))
    }
}

/// Loads the plugin at `path` and builds its behaviour with `seed`.
///
/// # Errors
///
/// As [`Plugin::open`] and [`Plugin::construct`].
pub fn load(path: impl AsRef<Path>, seed: u64) -> Result<Arc<dyn Behaviour>, LoadError> {
    Plugin::open(path)?.construct(seed)
}

/// A behaviour from a plugin, holding its library. Fields drop in order:
/// the behaviour (whose code is in the library) before the library.
struct Loaded {
    behaviour: Constructed,
    _library: Option<Arc<Library>>,
}

impl Behaviour for Loaded {
    fn name(&self) -> String {
        self.behaviour.name()
    }
    fn block_timestamp(&self, ctx: &Context<'_>, parent: &BlockHeader, now_ms: u64) -> u64 {
        self.behaviour.block_timestamp(ctx, parent, now_ms)
    }
    fn publish(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        self.behaviour.publish(ctx, block, peers)
    }
    fn incoming(&self, ctx: &Context<'_>, block: Block, from: Option<&PeerUrl>) -> Option<Block> {
        self.behaviour.incoming(ctx, block, from)
    }
    fn relay(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        self.behaviour.relay(ctx, block, peers)
    }
    fn accepted(&self, ctx: &Context<'_>, block: &Block, from: Option<&PeerUrl>) -> Vec<Action> {
        self.behaviour.accepted(ctx, block, from)
    }
    fn relay_tx(&self, ctx: &Context<'_>, tx: &Transaction, peers: &[PeerUrl]) -> Vec<PeerUrl> {
        self.behaviour.relay_tx(ctx, tx, peers)
    }
    fn serve_status(&self, ctx: &Context<'_>, honest: Status) -> Status {
        self.behaviour.serve_status(ctx, honest)
    }
    fn serve_blocks(&self, ctx: &Context<'_>, from: u64, honest: Vec<Block>) -> Vec<Block> {
        self.behaviour.serve_blocks(ctx, from, honest)
    }
    fn serve_peers(&self, ctx: &Context<'_>, honest: Vec<PeerUrl>) -> Vec<PeerUrl> {
        self.behaviour.serve_peers(ctx, honest)
    }
    fn serve_delay(&self, ctx: &Context<'_>) -> Duration {
        self.behaviour.serve_delay(ctx)
    }
    fn next_auto(&self, ctx: &Context<'_>, rng: &mut dyn RngCore) -> Option<AutoAction> {
        self.behaviour.next_auto(ctx, rng)
    }
    fn tick_interval(&self) -> Option<Duration> {
        self.behaviour.tick_interval()
    }
    fn tick(&self, ctx: &Context<'_>) -> Vec<Action> {
        self.behaviour.tick(ctx)
    }
}
