//! The plugin loader: each error case with its message, a panicking plugin
//! that cannot take its node down, and the example plugin loaded from the
//! library cargo builds, run against honest nodes.
//!
//! The error cases need real libraries: small `cdylib`s compiled here with
//! the toolchain's `rustc` into a temporary directory, exporting
//! declarations with one field wrong at a time. The example plugin is built
//! with `cargo build --workspace --lib --bins --tests --examples` (the
//! targets `cargo test --workspace` builds, so features unify the same way
//! and the plugin links the same crapcoin-core build as the test; a no-op
//! but for the `cdylib` itself, which cargo test does not build).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use behaviours::loader::{self, LoadError, Plugin};
use behaviours::plugin::{ABI_VERSION, CORE_VERSION, MAGIC, RUSTC_VERSION, TEXT_CAPACITY};
use crapcoin_core::behaviour::Action;
use crapcoin_core::network::Outgoing;
use crapcoin_core::{Behaviour, Block, Context, Event, PeerUrl, Status};
use kit::plugin::library_name;
use kit::scenario::Scenario;

/// A scratch directory for this test binary.
fn scratch(name: &str) -> PathBuf {
    kit::plugin::scratch("plugin-tests", name)
}

/// Compiles `source` into a `cdylib` called `stem` with plain rustc.
fn compile_library(stem: &str, source: &str) -> PathBuf {
    kit::plugin::compile_library("plugin-tests", stem, source)
}

/// A library exporting a declaration with the given fields and a
/// constructor that returns null (as a plugin's does after a panic).
fn fake_plugin(stem: &str, magic: u64, abi: u32, rustc: &str, core: &str) -> PathBuf {
    let source = format!(
        r#"
#[repr(C)]
pub struct Text {{ len: u32, bytes: [u8; {cap}] }}
const fn text(s: &str) -> Text {{
    let src = s.as_bytes();
    let mut bytes = [0u8; {cap}];
    let mut i = 0;
    while i < src.len() {{ bytes[i] = src[i]; i += 1; }}
    Text {{ len: src.len() as u32, bytes }}
}}
#[repr(C)]
pub struct Declaration {{
    magic: u64, abi: u32, rustc: Text, core: Text, name: Text, version: Text,
    construct: unsafe extern "C" fn(u64) -> *mut u8,
}}
unsafe extern "C" fn construct(_seed: u64) -> *mut u8 {{ std::ptr::null_mut() }}
#[no_mangle]
pub static CRAPCOIN_PLUGIN_DECLARATION: Declaration = Declaration {{
    magic: {magic}, abi: {abi}, rustc: text({rustc:?}), core: text({core:?}),
    name: text("{stem}"), version: text("0.0.0"), construct,
}};
"#,
        cap = TEXT_CAPACITY,
    );
    compile_library(stem, &source)
}

fn message(e: &LoadError) -> String {
    e.to_string()
}

#[test]
fn a_missing_file_is_named() {
    let path = scratch("missing").join(library_name("nothing_here"));
    let e = Plugin::open(&path).expect_err("no file");
    assert!(matches!(e, LoadError::NotFound { .. }), "{e:?}");
    let text = message(&e);
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("no such file"), "{text}");
}

#[test]
fn a_file_that_is_not_a_library_is_refused() {
    let path = scratch("not-a-library").join(library_name("text"));
    std::fs::write(&path, "this is not a shared library\n").expect("writes");
    let e = Plugin::open(&path).expect_err("not a library");
    assert!(matches!(e, LoadError::NotALibrary { .. }), "{e:?}");
    let text = message(&e);
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("not a loadable library"), "{text}");
}

/// Every declaration error, one library each; each library also has every
/// later field wrong, so the test shows the checks run in order.
#[test]
fn declaration_errors_name_the_file_and_what_differs_in_order() {
    let no_declaration = compile_library(
        "no_declaration",
        "#[no_mangle] pub extern \"C\" fn something_else() -> u32 { 7 }",
    );
    let e = Plugin::open(&no_declaration).expect_err("no declaration");
    assert!(matches!(e, LoadError::NoDeclaration { .. }), "{e:?}");
    let text = message(&e);
    assert!(
        text.contains(&no_declaration.display().to_string()),
        "{text}"
    );
    assert!(text.contains("CRAPCOIN_PLUGIN_DECLARATION"), "{text}");

    let cases: [(&str, u64, u32, &str, &str, &str); 5] = [
        (
            "bad_magic",
            0x1234,
            ABI_VERSION + 1,
            "rustc 0.0.1",
            "9.9.9",
            "bad magic number",
        ),
        (
            "bad_abi",
            MAGIC,
            ABI_VERSION + 1,
            "rustc 0.0.1",
            "9.9.9",
            "loader ABI version",
        ),
        (
            "bad_rustc",
            MAGIC,
            ABI_VERSION,
            "rustc 0.0.1",
            "9.9.9",
            "rustc 0.0.1",
        ),
        (
            "bad_core",
            MAGIC,
            ABI_VERSION,
            RUSTC_VERSION,
            "9.9.9",
            "crapcoin-core 9.9.9",
        ),
        (
            "null_constructor",
            MAGIC,
            ABI_VERSION,
            RUSTC_VERSION,
            CORE_VERSION,
            "panicked",
        ),
    ];
    let builds: Vec<_> = cases
        .iter()
        .map(|(stem, magic, abi, rustc, core, _)| {
            let (stem, magic, abi) = (stem.to_string(), *magic, *abi);
            let (rustc, core) = (rustc.to_string(), core.to_string());
            std::thread::spawn(move || fake_plugin(&stem, magic, abi, &rustc, &core))
        })
        .collect();
    let paths: Vec<PathBuf> = builds
        .into_iter()
        .map(|b| b.join().expect("compiles"))
        .collect();
    for ((stem, _, _, _, _, says), path) in cases.iter().zip(&paths) {
        let result = Plugin::open(path).and_then(|p| p.construct(1));
        let e = result.err().unwrap_or_else(|| panic!("{stem} loaded"));
        let ok = match *stem {
            "bad_magic" => matches!(e, LoadError::BadMagic { found: 0x1234, .. }),
            "bad_abi" => {
                matches!(&e, LoadError::AbiMismatch { found, .. } if *found == ABI_VERSION + 1)
            }
            "bad_rustc" => {
                matches!(&e, LoadError::RustcMismatch { found, expected, .. }
                    if found == "rustc 0.0.1" && expected == RUSTC_VERSION)
            }
            "bad_core" => {
                matches!(&e, LoadError::CoreMismatch { found, expected, .. }
                    if found == "9.9.9" && expected == CORE_VERSION)
            }
            _ => matches!(e, LoadError::ConstructorPanicked { .. }),
        };
        assert!(ok, "{stem}: {e:?}");
        let text = message(&e);
        assert!(text.contains(&path.display().to_string()), "{stem}: {text}");
        assert!(text.contains(says), "{stem}: {text}");
    }
}

/// A behaviour whose every overridden decision panics.
#[derive(Debug, Default)]
struct Panicky {
    ticks: AtomicU64,
}

impl Behaviour for Panicky {
    fn name(&self) -> String {
        "panicky".to_owned()
    }

    fn publish(&self, _ctx: &Context<'_>, _block: &Block, _peers: &[PeerUrl]) -> Vec<Outgoing> {
        panic!("publish is broken");
    }

    fn serve_status(&self, _ctx: &Context<'_>, _honest: Status) -> Status {
        panic!("status is broken");
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(50))
    }

    fn tick(&self, _ctx: &Context<'_>) -> Vec<Action> {
        self.ticks.fetch_add(1, Ordering::Relaxed);
        panic!("tick is broken");
    }
}

// Seed 0 makes the constructor itself panic.
behaviours::export_plugin!(|seed: u64| {
    assert!(seed != 0, "this plugin refuses seed 0");
    Panicky::default()
});

/// The panics stay inside the plugin's guard: the constructor's becomes an
/// error, a decision's becomes the honest decision, and the node with the
/// broken plugin keeps mining and publishing to honest peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_in_a_plugin_never_leave_it() {
    let plugin = Plugin::linked(&CRAPCOIN_PLUGIN_DECLARATION).expect("same build");
    assert_eq!(plugin.name(), "crapcoin-behaviours");
    let Err(e) = plugin.construct(0) else {
        panic!("a panicking constructor built a behaviour");
    };
    assert!(matches!(e, LoadError::ConstructorPanicked { .. }), "{e:?}");
    let behaviour = plugin.construct(1).expect("constructs");
    assert_eq!(behaviour.name(), "panicky");

    let mut scenario = Scenario::custom("panicky plugin", move |_| behaviour.clone());
    scenario.bad = 1;
    scenario.honest = 3;
    scenario.run_for = Duration::from_secs(2);
    let run = scenario.run().await;
    run.check_invariants();
    let bad = run.bad().next().expect("the plugin node");
    let bad_name = bad.name.clone();
    // Its mined blocks were published honestly (publish panicked).
    let mined: Vec<_> = run
        .events
        .snapshot()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::BlockMined { hash, .. } if r.node == bad_name => Some(hash),
            _ => None,
        })
        .collect();
    assert!(!mined.is_empty(), "the plugin node never mined");
    let pushed = run.events.snapshot().iter().any(|r| {
        run.is_honest(&r.node)
            && matches!(&r.event, Event::BlockAccepted { hash, from: Some(from), .. }
                if mined.contains(hash) && *from == *bad.handle.url())
    });
    assert!(
        pushed,
        "no mined block of the plugin node reached an honest node"
    );
    run.shutdown().await;
}

/// The example plugin loads, runs as a node against honest nodes, and
/// fails: its blocks are refused as `wrong_difficulty` and it is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_plugin_loads_and_fails_against_honest_nodes() {
    let path = kit::plugin::example_plugin();
    let plugin = Plugin::open(&path).expect("the example plugin loads");
    assert_eq!(plugin.name(), "attacker-plugin");
    let behaviour = plugin.construct(3).expect("constructs");
    drop(plugin);
    // The behaviour alone keeps the library loaded.
    assert_eq!(behaviour.name(), "lazy_miner");
    let again = loader::load(&path, 4).expect("loads twice");
    let seen = Arc::new(std::sync::Mutex::new(vec![behaviour, again]));
    let give = seen.clone();
    let mut scenario = Scenario::custom("lazy miner plugin", move |i| {
        give.lock().expect("lock")[i].clone()
    });
    scenario.run_for = Duration::from_secs(3);
    let run = scenario.run().await;
    run.check_invariants();
    let rejected = run.rejections_of_bad();
    assert!(
        rejected.get("wrong_difficulty").copied().unwrap_or(0) > 0,
        "{rejected:?}"
    );
    assert!(
        run.drops_of_bad()
            .iter()
            .any(|(_, _, why)| *why == crapcoin_core::observer::DropReason::Misbehaving),
        "the lazy miner was never dropped"
    );
    run.shutdown().await;
    drop(seen);
}
