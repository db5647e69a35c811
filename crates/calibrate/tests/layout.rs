//! The workspace's source files depend on each other one way: within each
//! crate, no file reaches (through `crate::` or `super::` paths) into a
//! module that reaches back to it, directly or around a longer circle.
//! The check reads the sources as text: every `crate::a::b` or `super::b`
//! outside comments and before the file's `#[cfg(test)]` is an arrow to the
//! module it names (a name that is no module, such as a re-exported item,
//! is no arrow). A folder's `mod.rs` naming its own children is not an
//! arrow either: that is the facade it is for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates' source folders, from the workspace root.
const CRATES: [&str; 7] = [
    "crates/core/src",
    "crates/embed/src",
    "crates/edge/src",
    "crates/synth/src",
    "crates/calibrate/src",
    "crates/cli/src",
    "research/study/src",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of `file` under `src` (`metric::score`; `metric` for
/// `metric/mod.rs`), or None for the crate root.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).filter(|p| p != "mod").collect();
    let name = parts.join("::");
    (!matches!(name.as_str(), "lib" | "main" | "")).then_some(name)
}

/// The identifiers following each occurrence of `prefix` in `code`, as paths of up to two segments.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let word = |s: &'a str| s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or("");
    code.match_indices(prefix)
        .map(|(at, _)| {
            let first = word(&code[at + prefix.len()..]);
            let rest = &code[at + prefix.len() + first.len()..];
            let second = rest.strip_prefix("::").map(word).filter(|w| !w.is_empty());
            std::iter::once(first).chain(second).collect()
        })
        .collect()
}

/// Arrows between the modules of one crate.
fn arrows(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeMap<String, PathBuf> = files.iter().filter_map(|f| module_of(src, f).map(|m| (m, f.clone()))).collect();
    let mut graph = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        let code: String =
            text.split("#[cfg(test)]").next().unwrap().lines().map(|line| line.split("//").next().unwrap()).collect::<Vec<_>>().join("\n");
        let parent = module.rsplit_once("::").map(|(p, _)| p.to_string());
        let mut targets = BTreeSet::new();
        let mut add = |path: Vec<&str>, base: Option<&str>| {
            let joined = |n: usize| base.into_iter().chain(path.iter().copied().take(n)).collect::<Vec<_>>().join("::");
            for n in (1..=path.len()).rev() {
                let target = joined(n);
                if modules.contains_key(&target) && &target != module && !target.starts_with(&format!("{module}::")) {
                    targets.insert(target);
                    break;
                }
            }
        };
        for path in paths_after(&code, "crate::") {
            add(path, None);
        }
        for path in paths_after(&code, "super::") {
            add(path, parent.as_deref());
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

/// A circle through `graph`, if there is one (depth-first search).
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_source_file_depends_on_one_that_depends_back_on_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for krate in CRATES {
        let graph = arrows(&root.join(krate));
        assert!(graph.len() >= 2, "{krate}: only {} modules found", graph.len());
        if let Some(circle) = find_circle(&graph) {
            panic!("{krate}: the files depend on each other in a circle: {}", circle.join(" -> "));
        }
    }
}

/// The check itself finds a circle, and only a real one.
#[test]
fn the_circle_check_finds_a_planted_circle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("metric")).unwrap();
    for (file, text) in [
        ("lib.rs", "pub mod a; pub mod b; pub mod metric;"),
        ("a.rs", "use crate::b::Thing; // crate::c in a comment\n"),
        ("b.rs", "pub struct Thing;\n#[cfg(test)]\nmod tests { use crate::a; }\n"),
        ("metric/mod.rs", "pub mod score; pub use score::Fit;"),
        ("metric/score.rs", "use super::Standard; use crate::a;"),
    ] {
        std::fs::write(src.join(file), text).unwrap();
    }
    let graph = arrows(src);
    assert_eq!(graph["a"], BTreeSet::from(["b".to_string()]));
    assert!(graph["b"].is_empty(), "a test module's arrows do not count");
    assert!(graph["metric::score"].contains("a") && !graph["metric::score"].contains("metric"));
    assert_eq!(find_circle(&graph), None);
    std::fs::write(src.join("b.rs"), "use crate::metric::score::helper;").unwrap();
    let circle = find_circle(&arrows(src)).expect("a -> b -> metric::score -> a");
    assert_eq!(circle.len(), 4, "{circle:?}");
}
