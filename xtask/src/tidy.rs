//! `cargo xtask tidy`: the shape of the code, checked (`cargo xtask test` runs it first).
//!
//! - **Layers.** Each top-level module of `backend/src` belongs to a layer ([`LAYERS`]):
//!   infrastructure, services, the state that wires services together for transports, and
//!   transports (the crate root composes them). A module imports its own layer or lower ones,
//!   and modules of one layer form no cycle.
//! - **SQL lives in `backend/src/db`**, and sqlx's types stay there.
//! - **`shared` is plain data**: nothing async, nothing HTTP, nothing of a database.
//! - **The crate root only composes**: modules use nothing from `lib.rs` (`crate::<item>`
//!   that is not a module); what they share lives in a layer.
//! - **The map is true**: ARCHITECTURE.md's table of the backend's modules names each module
//!   once, in the layer [`LAYERS`] gives it, and nothing that does not exist.
//! - **Files stay readable**: none over [`LONG_FILE`] lines under a crate's `src/` unless
//!   ARCHITECTURE.md names it with the reason.
//!
//! What breaks these today is listed in `xtask/tidy-debt.txt`, one line each: the check fails
//! on anything new, and on a listed line that is no longer true (delete it: the list only
//! shrinks). Test modules (`#[cfg(test)]` onwards) are left out: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::build::root;

/// The backend's top-level modules by layer, lowest first.
pub const LAYERS: &[(&str, &[&str])] = &[
    ("infrastructure", &["error", "config", "clock", "db", "bus", "audit", "egress", "metrics", "secrets", "proxies"]),
    (
        "services",
        &["auth", "teams", "policy", "projects", "telemetry", "alerts", "relay", "assistant", "fleet", "previews"],
    ),
    // The services wired together: what transports are handed. Services never see it.
    ("state", &["state"]),
    ("transports", &["http", "graphql", "mcp", "agent_api", "streams"]),
];

/// Each top-level module and the modules it imports.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Lines above which a file needs a reason in ARCHITECTURE.md.
pub const LONG_FILE: usize = 600;

const DEBT: &str = "xtask/tidy-debt.txt";

pub fn run() -> anyhow::Result<()> {
    let root = root();
    let mut found = BTreeSet::new();
    let (graph, root_uses) = backend_imports(&root.join("backend/src"))?;
    found.extend(root_uses);
    found.extend(layer_findings(&graph)?);
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).context("cannot read ARCHITECTURE.md")?;
    found.extend(map_findings(&graph, &architecture));
    found.extend(sql_findings(&root.join("backend/src"))?);
    found.extend(shared_findings(&root.join("shared/Cargo.toml"))?);
    found.extend(long_file_findings(&root)?);

    let debt_text = std::fs::read_to_string(root.join(DEBT)).with_context(|| format!("cannot read {DEBT}"))?;
    let debt: BTreeSet<String> =
        debt_text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect();
    let new: Vec<&String> = found.difference(&debt).collect();
    let paid: Vec<&String> = debt.difference(&found).collect();
    let cycle = largest_cycle(&graph);
    eprintln!(
        "==> tidy: {} known debts in {DEBT}; the backend's largest import cycle spans {} of {} modules{}",
        debt.len(),
        cycle.len(),
        graph.len(),
        if cycle.is_empty() { String::new() } else { format!(" ({})", cycle.join(" ")) }
    );
    if new.is_empty() && paid.is_empty() {
        return Ok(());
    }
    let mut message = String::new();
    if !new.is_empty() {
        message.push_str("the code's shape got worse (fix it; see xtask/src/tidy.rs for the rules):\n");
        for line in &new {
            message.push_str(&format!("  {line}\n"));
        }
    }
    if !paid.is_empty() {
        message.push_str(&format!("paid off: delete these lines from {DEBT}:\n"));
        for line in &paid {
            message.push_str(&format!("  {line}\n"));
        }
    }
    bail!("{message}")
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, modules)| modules.contains(&module))
}

/// Every top-level module of the backend and the modules its files import (`crate::<m>`),
/// and the uses of items of the crate root,
/// leaving out test modules.
fn backend_imports(src: &Path) -> anyhow::Result<(Graph, Vec<String>)> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut root_uses = BTreeSet::new();
    let mut files = Vec::new();
    rust_files(src, &mut files)?;
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(src, f)).collect();
    for module in &modules {
        graph.entry(module.clone()).or_default();
    }
    for file in &files {
        let Some(from) = top_module(src, file) else { continue };
        let text = std::fs::read_to_string(file)?;
        for to in imported_modules(&without_tests(&text)) {
            if to != from && modules.contains(&to) {
                graph.entry(from.clone()).or_default().insert(to);
            } else if !modules.contains(&to) {
                // An item of the crate root, which builds the state and gathers the
                // transports: a module leaning on it sits above every layer unseen.
                root_uses.insert(format!("root: {from} -> crate::{to}"));
            }
        }
    }
    Ok((graph, root_uses.into_iter().collect()))
}

/// The top-level module a file belongs to (`relay` for `relay/client.rs`); none for the crate
/// roots.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// A file's code: its text up to its test module, without comments (a `//` in a string cuts
/// the rest of that line too, which no check here minds).
fn without_tests(text: &str) -> String {
    let code = text.find("#[cfg(test)]").map_or(text, |at| &text[..at]);
    code.lines().map(|line| line.find("//").map_or(line, |at| &line[..at])).collect::<Vec<_>>().join("\n")
}

/// The top-level modules named after `crate::`, including in `crate::{a, b::c}` groups.
fn imported_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Only the first segment of each item of the group (`a` of `a::{b, c}`) is a
            // top-level module: the items are the text between commas outside inner braces.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        let name = ident(&group[i..]);
                        if !name.is_empty() {
                            out.insert(name);
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

/// Where ARCHITECTURE.md's code map and the backend disagree. The map's rows read
/// `| <layer> | \`<module>\` | <what it holds> |`.
fn map_findings(graph: &BTreeMap<String, BTreeSet<String>>, architecture: &str) -> Vec<String> {
    let mut mapped: BTreeMap<String, String> = BTreeMap::new();
    for line in architecture.lines() {
        let cells: Vec<&str> = line.trim().split('|').map(str::trim).collect();
        let [_, layer, module, ..] = cells[..] else { continue };
        let Some(module) = module.strip_prefix('`').and_then(|m| m.strip_suffix('`')) else { continue };
        if LAYERS.iter().any(|(name, _)| *name == layer) {
            mapped.insert(module.to_owned(), layer.to_owned());
        }
    }
    let mut out = Vec::new();
    for module in graph.keys() {
        let layer = layer_of(module).map_or("", |i| LAYERS[i].0);
        match mapped.get(module) {
            None => out.push(format!("map: {module} is missing from ARCHITECTURE.md's code map")),
            Some(m) if m != layer => {
                out.push(format!("map: {module} is in {m} in ARCHITECTURE.md but in {layer} here"))
            }
            Some(_) => {}
        }
    }
    for module in mapped.keys().filter(|m| !graph.contains_key(*m)) {
        out.push(format!("map: ARCHITECTURE.md maps {module}, which backend/src does not have"));
    }
    out
}

/// `layer: a -> b` for each import upwards, and `cycle: a -> b` for each import that closes
/// a cycle among modules of one layer (the edges of its strongly connected components).
fn layer_findings(graph: &BTreeMap<String, BTreeSet<String>>) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for module in graph.keys() {
        if layer_of(module).is_none() {
            bail!("backend/src/{module} has no layer: add it to LAYERS in xtask/src/tidy.rs");
        }
    }
    let mut same_layer: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, tos) in graph {
        for to in tos {
            let (a, b) = (layer_of(from), layer_of(to));
            if b > a {
                out.push(format!("layer: {from} -> {to}"));
            } else if a == b {
                same_layer.entry(from.clone()).or_default().insert(to.clone());
            }
        }
    }
    for component in components(&same_layer) {
        if component.len() > 1 {
            for from in &component {
                for to in same_layer.get(from).into_iter().flatten() {
                    if component.contains(to) {
                        out.push(format!("cycle: {from} -> {to}"));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The largest set of modules that all reach each other through imports.
fn largest_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    components(graph).into_iter().filter(|c| c.len() > 1).max_by_key(BTreeSet::len).into_iter().flatten().collect()
}

/// Strongly connected components (Tarjan's algorithm).
fn components(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<BTreeSet<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.insert(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                self.out.push(component);
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.out
}

/// `sql: <file>` for SQL outside `db/`, `sqlx: <file>` for sqlx's types outside it.
fn sql_findings(src: &Path) -> anyhow::Result<Vec<String>> {
    const SQL: &[&str] =
        &["\"SELECT ", "\"INSERT ", "\"UPDATE ", "\"DELETE ", "query(", "query_as(", "query_as::", "query_scalar"];
    let mut files = Vec::new();
    rust_files(src, &mut files)?;
    let mut out = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src)?.to_string_lossy().replace('\\', "/");
        if rel.starts_with("db/") {
            continue;
        }
        let text = std::fs::read_to_string(&file)?;
        let code = without_tests(&text);
        let code = code.as_str();
        if SQL.iter().any(|s| calls(code, s)) {
            out.push(format!("sql: backend/src/{rel}"));
        }
        if code.contains("sqlx::") {
            out.push(format!("sqlx: backend/src/{rel}"));
        }
    }
    Ok(out)
}

/// Whether `code` holds `needle` as a word of its own: `query(` but not `uri.query(` or
/// `path_and_query(`.
fn calls(code: &str, needle: &str) -> bool {
    code.match_indices(needle).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
    })
}

/// `shared: <crate>` for a dependency of `shared` that is async, HTTP or a database.
fn shared_findings(manifest: &Path) -> anyhow::Result<Vec<String>> {
    const HEAVY: &[&str] = &["tokio", "futures", "async", "axum", "hyper", "reqwest", "http", "sqlx", "redis", "tower"];
    let text = std::fs::read_to_string(manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let mut out = Vec::new();
    let mut in_deps = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]" || line.starts_with("[dependencies.");
            if let Some(name) = line.strip_prefix("[dependencies.").and_then(|l| l.strip_suffix(']')) {
                if HEAVY.iter().any(|h| name.contains(h)) {
                    out.push(format!("shared: {name}"));
                }
            }
            continue;
        }
        if in_deps {
            let name = line.split(['=', ' ', '.']).next().unwrap_or_default();
            if !name.is_empty() && HEAVY.iter().any(|h| name.contains(h)) {
                out.push(format!("shared: {name}"));
            }
        }
    }
    Ok(out)
}

/// `long: <file>` for a file over the limit that ARCHITECTURE.md does not name (in backticks,
/// with the reason it is long).
fn long_file_findings(root: &Path) -> anyhow::Result<Vec<String>> {
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).context("cannot read ARCHITECTURE.md")?;
    let mut out = Vec::new();
    for krate in ["backend", "bridge-daemon", "shared", "frontend", "e2e", "xtask"] {
        let src = root.join(krate).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files)?;
        for file in files {
            let lines = std::fs::read_to_string(&file)?.lines().count();
            let rel = file.strip_prefix(root)?.to_string_lossy().replace('\\', "/");
            if lines > LONG_FILE && !architecture.contains(&format!("`{rel}`")) {
                out.push(format!("long: {rel}"));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_must_name_every_module_in_its_layer_and_nothing_else() {
        let graph: BTreeMap<String, BTreeSet<String>> =
            ["db", "http", "auth"].iter().map(|m| (m.to_string(), BTreeSet::new())).collect();
        let doc =
            "| infrastructure | `db` | SQL |\n| services | `http` | routes |\n| services | `gone` | x |\n| a | b |";
        assert_eq!(
            map_findings(&graph, doc),
            [
                "map: auth is missing from ARCHITECTURE.md's code map",
                "map: http is in services in ARCHITECTURE.md but in transports here",
                "map: ARCHITECTURE.md maps gone, which backend/src does not have",
            ]
        );
    }

    #[test]
    fn imports_are_read_from_paths_and_groups() {
        let text =
            "use crate::db::Store;\nuse crate::{auth::{Access, x}, error::Error};\nfn f() { crate::relay::x(); }";
        let found: Vec<String> = imported_modules(text).into_iter().collect();
        assert_eq!(found, ["auth", "db", "error", "relay"]);
    }

    #[test]
    fn sql_is_told_from_methods_that_share_its_names() {
        assert!(calls("sqlx::query(\"x\")", "query("));
        assert!(calls("let q = query(\"x\");", "query("));
        assert!(!calls("req.uri().query()", "query("));
        assert!(!calls("uri.path_and_query()", "query("));
    }

    #[test]
    fn test_modules_are_left_out() {
        assert_eq!(
            without_tests("use crate::a; // see crate::c\n#[cfg(test)]\nmod tests { use crate::b; }"),
            "use crate::a; "
        );
    }

    #[test]
    fn an_upward_import_and_a_sideways_cycle_are_found() {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut edge = |a: &str, b: &str| {
            graph.entry(a.into()).or_default().insert(b.into());
            graph.entry(b.into()).or_default();
        };
        edge("db", "state");
        edge("relay", "assistant");
        edge("assistant", "relay");
        edge("graphql", "db");
        let found = layer_findings(&graph).unwrap();
        assert_eq!(found, ["layer: db -> state", "cycle: assistant -> relay", "cycle: relay -> assistant"]);
        assert_eq!(largest_cycle(&graph), ["assistant", "relay"]);
    }
}
