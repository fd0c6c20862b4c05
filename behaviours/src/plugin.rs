//! The plugin ABI: what an attacker crate built as a `cdylib` exports, so
//! that a node can load it at run time ([`crate::loader`]).
//!
//! A plugin is an ordinary behaviour plus one macro call:
//!
//! ```no_run
//! struct LazyMiner;
//! impl crapcoin_core::Behaviour for LazyMiner { /* overrides go here */ }
//! behaviours::export_plugin!(|_seed: u64| LazyMiner);
//! # fn main() {}
//! ```
//!
//! [`export_plugin!`](crate::export_plugin) exports a [`Declaration`] under
//! the symbol [`SYMBOL`]. Its first fields have a layout that never
//! changes: a [`MAGIC`] number, then [`ABI_VERSION`], then the rustc and
//! `crapcoin-core` versions the plugin was built with, as fixed-size text.
//! The loader reads and checks them in that order and only then calls the
//! constructor, because what the constructor hands over, a
//! `Box<dyn Behaviour>`, has a Rust layout: it is only understood by a node
//! built by the same compiler against the same core.
//!
//! Panics never cross the boundary: the constructor and every decision of
//! the constructed behaviour run inside [`std::panic::catch_unwind`] *in the
//! plugin* ([`Guarded`]). A decision that panics falls back to the honest
//! decision, and a constructor that panics makes loading fail. A plugin must
//! therefore be built with `panic = "unwind"` (the default).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crapcoin_core::behaviour::{Action, AutoAction, honest};
use crapcoin_core::network::Outgoing;
use crapcoin_core::{Behaviour, Block, BlockHeader, Context, PeerUrl, Status, Transaction};
use rand::RngCore;

/// The first field of every [`Declaration`]: "CRAPPLUG" in ASCII.
pub const MAGIC: u64 = u64::from_be_bytes(*b"CRAPPLUG");

/// The version of the [`Declaration`] layout and of the constructor's
/// contract. Bumped on any change to either.
pub const ABI_VERSION: u32 = 1;

/// The rustc that built this crate, recorded by its build script; a plugin
/// carries the one that built *its* copy.
pub const RUSTC_VERSION: &str = env!("BEHAVIOURS_RUSTC_VERSION");

/// The `crapcoin-core` version this crate was built against.
pub const CORE_VERSION: &str = crapcoin_core::node::VERSION;

/// The name of the exported [`Declaration`].
pub const SYMBOL: &str = "CRAPCOIN_PLUGIN_DECLARATION";

/// Bytes a [`Text`] holds at most.
pub const TEXT_CAPACITY: usize = 124;

/// A short string with a C layout and no pointers, so a declaration can be
/// read before anything else about the plugin is known. Longer strings are
/// cut at [`TEXT_CAPACITY`] bytes (on a character boundary).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Text {
    len: u32,
    bytes: [u8; TEXT_CAPACITY],
}

impl Text {
    /// `s`, cut to [`TEXT_CAPACITY`] bytes.
    pub const fn new(s: &str) -> Self {
        let src = s.as_bytes();
        let mut len = if src.len() < TEXT_CAPACITY {
            src.len()
        } else {
            TEXT_CAPACITY
        };
        // Never cut inside a UTF-8 sequence.
        while len > 0 && len < src.len() && (src[len] & 0xC0) == 0x80 {
            len -= 1;
        }
        let mut bytes = [0u8; TEXT_CAPACITY];
        let mut i = 0;
        while i < len {
            bytes[i] = src[i];
            i += 1;
        }
        Self {
            len: len as u32,
            bytes,
        }
    }

    /// The text; garbage from a foreign library reads as a lossy string.
    pub fn to_string_lossy(&self) -> String {
        let len = (self.len as usize).min(TEXT_CAPACITY);
        String::from_utf8_lossy(&self.bytes[..len]).into_owned()
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

/// What a constructor hands over: the behaviour, boxed twice so the
/// pointer crossing the boundary is thin.
pub type Constructed = Box<dyn Behaviour>;

/// The constructor's signature.
///
/// # Safety
///
/// Callers must have checked the declaration's magic, ABI, rustc and core
/// versions against their own: only then is the returned pointer (a
/// `Box<Box<dyn Behaviour>>` turned raw, or null after a panic) meaningful
/// to them.
pub type Construct = unsafe extern "C" fn(seed: u64) -> *mut Constructed;

/// What a plugin exports under [`SYMBOL`]. Field order is the order the
/// loader checks them in; never reorder.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Declaration {
    /// Always [`MAGIC`]: tells a CrapCoin plugin from a library that
    /// happens to export the symbol.
    pub magic: u64,
    /// The plugin's [`ABI_VERSION`].
    pub abi_version: u32,
    /// The rustc the plugin was built with.
    pub rustc_version: Text,
    /// The `crapcoin-core` version the plugin was built against.
    pub core_version: Text,
    /// The plugin crate's name, for messages.
    pub plugin_name: Text,
    /// The plugin crate's version, for messages.
    pub plugin_version: Text,
    /// Builds the behaviour; see [`Construct`].
    pub construct: Construct,
}

impl Declaration {
    /// A declaration of this build's versions for a plugin called `name`
    /// at `version`, constructing with `construct`.
    pub const fn new(name: &str, version: &str, construct: Construct) -> Self {
        Self {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            rustc_version: Text::new(RUSTC_VERSION),
            core_version: Text::new(CORE_VERSION),
            plugin_name: Text::new(name),
            plugin_version: Text::new(version),
            construct,
        }
    }
}

/// Runs a plugin's constructor inside `catch_unwind` and hands the guarded
/// behaviour over as a raw pointer: what [`export_plugin!`](crate::export_plugin)'s
/// generated constructor calls. Null when the constructor panicked.
pub fn construct<B, F>(seed: u64, constructor: F) -> *mut Constructed
where
    B: Behaviour,
    F: FnOnce(u64) -> B,
{
    match catch_unwind(AssertUnwindSafe(|| constructor(seed))) {
        Ok(behaviour) => {
            let boxed: Constructed = Box::new(Guarded::new(behaviour));
            Box::into_raw(Box::new(boxed))
        }
        Err(_) => std::ptr::null_mut(),
    }
}

/// Exports a behaviour constructor as this `cdylib`'s CrapCoin plugin.
///
/// The argument is anything callable as `FnOnce(u64) -> B` where `B`
/// implements [`crapcoin_core::Behaviour`]; it gets the node's seed. The
/// macro exports a [`Declaration`](crate::plugin::Declaration) recording this
/// build's ABI, rustc and core versions and the crate's name and version,
/// and wraps the behaviour in [`Guarded`](crate::plugin::Guarded) so a
/// panic in it never leaves the plugin. Use it once per crate.
#[macro_export]
macro_rules! export_plugin {
    ($constructor:expr) => {
        /// This library's CrapCoin plugin declaration.
        #[allow(unsafe_code, reason = "a plugin must export its declaration unmangled")]
        #[allow(
            unreachable_pub,
            reason = "exported from the library, not through Rust paths"
        )]
        #[unsafe(no_mangle)]
        pub static CRAPCOIN_PLUGIN_DECLARATION: $crate::plugin::Declaration =
            $crate::plugin::Declaration::new(
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
                __crapcoin_plugin_construct,
            );

        /// # Safety
        ///
        /// See [`behaviours::plugin::Construct`]: only a loader that has
        /// checked this library's declaration may call it.
        #[allow(unsafe_code, reason = "the constructor's type is an unsafe fn pointer")]
        unsafe extern "C" fn __crapcoin_plugin_construct(
            seed: u64,
        ) -> *mut $crate::plugin::Constructed {
            $crate::plugin::construct(seed, $constructor)
        }
    };
}

/// A behaviour whose every decision runs inside `catch_unwind`; a decision
/// that panics is made honestly instead. Plugins get it from
/// [`export_plugin!`](crate::export_plugin); in-process behaviours can use it
/// too.
pub struct Guarded<B> {
    /// `None` only while being dropped.
    inner: Option<B>,
    panics: AtomicU64,
}

impl<B> std::fmt::Debug for Guarded<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("panics", &self.panics())
            .finish_non_exhaustive()
    }
}

impl<B: Behaviour> Guarded<B> {
    /// Guards `inner`.
    pub fn new(inner: B) -> Self {
        Self {
            inner: Some(inner),
            panics: AtomicU64::new(0),
        }
    }
}

impl<B> Guarded<B> {
    /// Decisions that panicked so far.
    pub fn panics(&self) -> u64 {
        self.panics.load(Ordering::Relaxed)
    }

    /// Runs `decide` on the inner behaviour; `honest` if it panics.
    fn guard<R>(&self, decide: impl FnOnce(&B) -> R, honest: impl FnOnce() -> R) -> R {
        let inner = self.inner.as_ref().expect("present until dropped");
        match catch_unwind(AssertUnwindSafe(|| decide(inner))) {
            Ok(r) => r,
            Err(_) => {
                self.panics.fetch_add(1, Ordering::Relaxed);
                honest()
            }
        }
    }
}

impl<B> Drop for Guarded<B> {
    fn drop(&mut self) {
        let inner = self.inner.take();
        // A panicking destructor must not unwind into the node either.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
    }
}

impl<B: Behaviour> Behaviour for Guarded<B> {
    fn name(&self) -> String {
        self.guard(B::name, || "plugin".to_owned())
    }

    fn block_timestamp(&self, ctx: &Context<'_>, parent: &BlockHeader, now_ms: u64) -> u64 {
        self.guard(
            |b| b.block_timestamp(ctx, parent, now_ms),
            || honest::block_timestamp(ctx, parent, now_ms),
        )
    }

    fn publish(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        self.guard(
            |b| b.publish(ctx, block, peers),
            || honest::publish(ctx, block, peers),
        )
    }

    fn incoming(&self, ctx: &Context<'_>, block: Block, from: Option<&PeerUrl>) -> Option<Block> {
        let copy = block.clone();
        self.guard(|b| b.incoming(ctx, block, from), || Some(copy))
    }

    fn relay(&self, ctx: &Context<'_>, block: &Block, peers: &[PeerUrl]) -> Vec<Outgoing> {
        self.guard(
            |b| b.relay(ctx, block, peers),
            || honest::relay(ctx, block, peers),
        )
    }

    fn serve_status(&self, ctx: &Context<'_>, honest: Status) -> Status {
        let copy = honest.clone();
        self.guard(|b| b.serve_status(ctx, honest), || copy)
    }

    fn accepted(&self, ctx: &Context<'_>, block: &Block, from: Option<&PeerUrl>) -> Vec<Action> {
        self.guard(
            |b| b.accepted(ctx, block, from),
            || honest::accepted(ctx, block, from),
        )
    }

    fn relay_tx(&self, ctx: &Context<'_>, tx: &Transaction, peers: &[PeerUrl]) -> Vec<PeerUrl> {
        self.guard(
            |b| b.relay_tx(ctx, tx, peers),
            || honest::relay_tx(ctx, tx, peers),
        )
    }

    fn serve_blocks(&self, ctx: &Context<'_>, from: u64, honest: Vec<Block>) -> Vec<Block> {
        let copy = honest.clone();
        self.guard(|b| b.serve_blocks(ctx, from, honest), || copy)
    }

    fn serve_peers(&self, ctx: &Context<'_>, honest: Vec<PeerUrl>) -> Vec<PeerUrl> {
        let copy = honest.clone();
        self.guard(|b| b.serve_peers(ctx, honest), || copy)
    }

    fn serve_delay(&self, ctx: &Context<'_>) -> Duration {
        self.guard(|b| b.serve_delay(ctx), || honest::serve_delay(ctx))
    }

    fn next_auto(&self, ctx: &Context<'_>, rng: &mut dyn RngCore) -> Option<AutoAction> {
        let inner = self.inner.as_ref().expect("present until dropped");
        match catch_unwind(AssertUnwindSafe(|| inner.next_auto(ctx, &mut *rng))) {
            Ok(r) => r,
            Err(_) => {
                self.panics.fetch_add(1, Ordering::Relaxed);
                honest::next_auto(ctx, rng)
            }
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.guard(B::tick_interval, honest::tick_interval)
    }

    fn tick(&self, ctx: &Context<'_>) -> Vec<Action> {
        self.guard(|b| b.tick(ctx), || honest::tick(ctx))
    }
}
