//! House rules, checked on the source:
//! * the behaviour that differs between users and groups branches on `ResourceKind` (`schema.rs`), never
//!   on a resource type's name; the one place a type name is compared is where a profile's resource type
//!   is loaded (`ResourceKind::from_name` in `schema.rs`);
//! * rendering (`http/respond.rs`) reads no store;
//! * one door to DynamoDB: only `shared/src/store/` names the table's SDK (`aws_sdk_dynamodb`); the rest
//!   of the core and every function calls the store's traits (the DynamoDB Streams SDK,
//!   `aws_sdk_dynamodbstreams`, is another crate: the stream consumer reads records with it).

use std::path::{Path, PathBuf};

/// The spellings of a comparison with a type name (tests compare JSON values with them; so only the
/// crates' sources are read, not their tests' folders).
const COMPARISONS: [&str; 6] = [
    "== \"User\"",
    "== \"Group\"",
    "!= \"User\"",
    "!= \"Group\"",
    "\"User\" =>",
    "\"Group\" =>",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The sources of the core (`shared/src`) and of every function (`functions/*/src`).
fn sources(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&root.join("shared/src"), &mut files);
    for f in std::fs::read_dir(root.join("functions")).unwrap() {
        let src = f.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(
        files.len() > 50,
        "the sources were not found under {}",
        root.display()
    );
    files
}

#[test]
fn no_type_name_is_compared_outside_the_schema_loader() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = sources(&root);
    let loader = root.join("shared/src/schema.rs");
    let mut found = Vec::new();
    for file in files.iter().filter(|f| **f != loader) {
        let text = std::fs::read_to_string(file).unwrap();
        // Unit tests at the end of a file compare rendered JSON with type names; they are not behaviour.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let line = line.trim_start();
            if line.starts_with("//") {
                continue;
            }
            if COMPARISONS.iter().any(|c| line.contains(c)) {
                found.push(format!("{}:{}: {line}", file.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "branch on ResourceKind (rt.kind, rt.is_user(), rt.is_group()), not on a type's name:\n{}",
        found.join("\n")
    );
}

/// Rendering reads no store: `http/respond.rs` turns a resource, and what the handler read for it (a
/// group's members), into an answer, synchronously. A store read there would hide DynamoDB calls
/// behind a rendering step (the handler reads through the service instead).
#[test]
fn rendering_reads_no_store() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/respond.rs");
    let text = std::fs::read_to_string(&file).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    for needle in [".await", "async fn", "AppState", "service", "store::"] {
        let hits: Vec<&str> = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//") && l.contains(needle))
            .collect();
        assert!(hits.is_empty(), "respond.rs uses `{needle}`: {hits:?}");
    }
}

/// One door to DynamoDB: the table's SDK (`aws_sdk_dynamodb`) is named only in `shared/src/store/`, whose
/// traits are the contract every other module and function calls (the events log, the checkpoints and the
/// webhook positions too: `store/events.rs`). Unit tests included; comments not. `aws_sdk_dynamodbstreams`
/// (the Streams API the consumer reads records with) is another crate and not matched.
#[test]
fn only_the_store_names_the_dynamodb_sdk() {
    const SDK: &str = "aws_sdk_dynamodb";
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let store = root.join("shared/src/store");
    let mut found = Vec::new();
    for file in sources(&root).iter().filter(|f| !f.starts_with(&store)) {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            let named = line.match_indices(SDK).any(|(i, _)| {
                !line[i + SDK.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            });
            if named {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "DynamoDB is reached through the store's traits (shared/src/store/), not the SDK:\n{}",
        found.join("\n")
    );
}
