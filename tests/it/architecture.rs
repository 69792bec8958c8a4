//! The module graph has no circles: layers point one way (transports →
//! actions → commit, hub, storage), so a reader can learn a module from the
//! ones below it. This reads the sources as `cargo modules dependencies
//! --acyclic` would: every `crate::…`, `super::…`, `self::…` and
//! child-module path outside `#[cfg(test)]` code is an edge from the file's
//! module to the module that path names; a strongly connected set of more
//! than one module is a circle, and the test names it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[test]
fn the_server_library_has_no_import_circles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_acyclic(&root.join("src"));
}

#[test]
fn every_workspace_crate_has_no_import_circles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Ok(entries) = std::fs::read_dir(root.join("benches")) else {
        return;
    };
    for entry in entries.flatten() {
        let src = entry.path().join("src");
        if src.join("lib.rs").exists() {
            assert_acyclic(&src);
        }
    }
}

/// The checker itself must see a circle where there is one.
#[test]
fn the_checker_finds_a_planted_circle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("hub")).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "pub mod hub;\npub mod wire;\n").expect("write");
    std::fs::write(
        src.join("hub/mod.rs"),
        "pub mod outbox;\npub use outbox::Outbox;\npub struct Encoded;\n",
    )
    .expect("write");
    std::fs::write(
        src.join("hub/outbox.rs"),
        "use super::Encoded;\n// crate::wire in a comment is no edge\npub struct Outbox;\n",
    )
    .expect("write");
    std::fs::write(
        src.join("wire.rs"),
        "#[cfg(test)]\nmod tests { use crate::hub::Outbox; }\nconst URL: &str = \"crate::hub\";\n",
    )
    .expect("write");
    let circles = circles(src);
    assert_eq!(
        circles,
        vec![vec!["hub".to_string(), "hub::outbox".to_string()]]
    );
}

fn assert_acyclic(src: &Path) {
    let found = circles(src);
    assert!(
        found.is_empty(),
        "import circles in {}: {}",
        src.display(),
        found
            .iter()
            .map(|c| c.join(" ↔ "))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

/// Every strongly connected set of two or more modules.
fn circles(src: &Path) -> Vec<Vec<String>> {
    let modules = modules(src);
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("source is readable");
        let code = without_tests(&without_comments_and_strings(&text));
        let children: Vec<&str> = names
            .iter()
            .filter_map(|n| {
                let rest = if module.is_empty() {
                    Some(n.as_str())
                } else {
                    n.strip_prefix(module.as_str())?.strip_prefix("::")
                };
                rest.filter(|r| !r.contains("::"))
            })
            .collect();
        for path in paths(&code, module, &children) {
            if let Some(target) = resolve(&path, &names) {
                if target != *module && !target.is_empty() {
                    edges.entry(module.clone()).or_default().insert(target);
                }
            }
        }
    }
    strongly_connected(&names, &edges)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect()
}

/// Module path → file, for every `.rs` file under `src` except the binary.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if parts == ["main"] {
                continue;
            }
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                parts.pop();
            }
            out.insert(parts.join("::"), path);
        }
    }
    out
}

/// The source with comments removed and string and char literals emptied,
/// so neither can look like a path.
fn without_comments_and_strings(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(next, Some('#' | '"')) && !is_ident(b.get(i.wrapping_sub(1)))
        {
            let mut hashes = 0;
            let mut j = i + 1;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && (next == Some('\\') || b.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\''); a lifetime has no closing quote.
            i += if next == Some('\\') { 2 } else { 1 };
            while i < b.len() && b[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// The code without `#[cfg(test)]` items (test modules and functions).
fn without_tests(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        // Skip to the item's body and past its matching brace, or its `;`.
        let open = after.find('{');
        let semi = after.find(';');
        match (open, semi) {
            (Some(o), s) if s.is_none_or(|s| o < s) => {
                let mut depth = 0;
                let mut end = after.len();
                for (k, ch) in after[o..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = o + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                rest = &after[end..];
            }
            (_, Some(s)) => rest = &after[s + 1..],
            _ => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// Every absolute module path the code names, `use` groups expanded.
fn paths(code: &str, module: &str, children: &[&str]) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_alphabetic() && chars[i] != '_'
            || is_ident(i.checked_sub(1).map(|p| &chars[p]))
        {
            i += 1;
            continue;
        }
        // Only the head of a path: `a::b::c` is read once, from `a`.
        let preceded_by_path = i >= 2 && chars[i - 1] == ':' && chars[i - 2] == ':';
        let start = i;
        while i < chars.len() && is_ident(Some(&chars[i])) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        if preceded_by_path || !(i + 1 < chars.len() && chars[i] == ':' && chars[i + 1] == ':') {
            continue;
        }
        let base: Vec<String> = match word.as_str() {
            "crate" => Vec::new(),
            "super" => parent(module),
            "self" => split(module),
            w if children.contains(&w) => {
                let mut p = split(module);
                p.push(w.to_string());
                p
            }
            _ => continue,
        };
        let (tails, end) = tree(&chars, i + 2);
        i = end;
        for mut tail in tails {
            let mut p = base.clone();
            // `super::super::x`
            while tail.first().map(String::as_str) == Some("super") {
                tail.remove(0);
                p.pop();
            }
            p.extend(tail);
            found.push(p);
        }
    }
    found
}

/// Parses what follows `prefix::`: a path, or a `{…}` group of paths.
/// Returns the tails and the index after them.
fn tree(chars: &[char], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let skip_ws = |mut i: usize| {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        i
    };
    i = skip_ws(i);
    if chars.get(i) == Some(&'{') {
        let mut all = Vec::new();
        i += 1;
        loop {
            i = skip_ws(i);
            match chars.get(i) {
                None => break,
                Some('}') => {
                    i += 1;
                    break;
                }
                Some(',') => i += 1,
                _ => {
                    let (tails, end) = tree(chars, i);
                    all.extend(tails);
                    if end == i {
                        i += 1;
                    } else {
                        i = end;
                    }
                }
            }
        }
        return (all, i);
    }
    let start = i;
    while i < chars.len() && is_ident(Some(&chars[i])) {
        i += 1;
    }
    if i == start {
        return (vec![Vec::new()], i);
    }
    let seg: String = chars[start..i].iter().collect();
    if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
        let (tails, end) = tree(chars, i + 2);
        let tails = tails
            .into_iter()
            .map(|mut t| {
                t.insert(0, seg.clone());
                t
            })
            .collect();
        return (tails, end);
    }
    (vec![vec![seg]], i)
}

fn split(module: &str) -> Vec<String> {
    if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_string).collect()
    }
}

fn parent(module: &str) -> Vec<String> {
    let mut p = split(module);
    p.pop();
    p
}

/// The longest module that `path` starts with.
fn resolve(path: &[String], names: &BTreeSet<String>) -> Option<String> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|candidate| names.contains(candidate))
}

/// Tarjan's strongly connected components, each sorted.
fn strongly_connected(
    nodes: &BTreeSet<String>,
    edges: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            let edges = self.edges;
            for w in edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                component.sort();
                self.out.push(component);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for n in nodes {
        if !walk.index.contains_key(n.as_str()) {
            walk.visit(n);
        }
    }
    walk.out.sort();
    walk.out
}
