//! The teaching documents cannot drift from the code: the worked example quoted in
//! `docs/bptt.md` is what `cargo run --example walkthrough` prints, and every code link in the
//! docs points at a file that exists and holds the function it names.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_walkthrough_in_the_doc_is_what_the_program_prints() {
    let doc = read(&root().join("docs/bptt.md"));
    let begin = "<!-- walkthrough:begin -->\n```text\n";
    let start = doc
        .find(begin)
        .expect("docs/bptt.md has the walkthrough:begin marker")
        + begin.len();
    let end = doc[start..]
        .find("```\n<!-- walkthrough:end -->")
        .expect("and the end marker")
        + start;
    // report() also checks every hand-computed gradient and the update against the library.
    let printed = rnn::walkthrough::report();
    assert_eq!(
        &doc[start..end],
        printed,
        "docs/bptt.md quotes an old walkthrough: paste the output of `cargo run --example walkthrough`"
    );
}

/// Every ``[`name`](../src/file.rs)`` link of a markdown file: (name, path relative to it).
fn code_links(markdown: &str) -> Vec<(String, String)> {
    let mut links = Vec::new();
    let mut rest = markdown;
    while let Some(open) = rest.find("[`") {
        rest = &rest[open + 2..];
        let Some(close) = rest.find("`](") else { break };
        let name = rest[..close].to_string();
        rest = &rest[close + 3..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split('#').next().unwrap_or("").to_string();
        // code names only: a backticked path (`src/rnn/elman.rs`) is a link to a file
        let is_name = name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '(' || c == ')');
        if target.ends_with(".rs") && is_name {
            links.push((name, target));
        }
    }
    links
}

#[test]
fn every_code_link_in_the_docs_names_a_function_in_an_existing_file() {
    let docs = [root().join("docs/bptt.md"), root().join("README.md")];
    let mut checked = 0;
    for doc in &docs {
        let text = read(doc);
        let base = doc.parent().unwrap();
        for (name, target) in code_links(&text) {
            let file = base.join(&target);
            assert!(
                file.is_file(),
                "{}: the link to {target} ({name}) points at no file",
                doc.display()
            );
            let source = read(&file);
            // `Type::function`, `function` or `Type`: the last segment is defined in the file
            let item = name.rsplit("::").next().unwrap().trim_end_matches("()");
            let defined = [
                format!("fn {item}("),
                format!("fn {item}<"),
                format!("struct {item}"),
                format!("enum {item}"),
                format!("trait {item}"),
                format!("const {item}"),
            ]
            .iter()
            .any(|d| source.contains(d.as_str()));
            assert!(
                defined,
                "{}: `{name}` is not defined in {target}",
                doc.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "only {checked} code links found: has the link form changed?"
    );
}

#[test]
fn the_link_parser_finds_links() {
    let links =
        code_links("see [`Elman::backward_step`](../src/rnn/elman.rs) and [not code](x.rs)");
    assert_eq!(
        links,
        [(
            "Elman::backward_step".to_string(),
            "../src/rnn/elman.rs".to_string()
        )]
    );
}

/// The README's first screen gives two commands for a fresh machine, the demo and the tests;
/// CI runs both as written, so that they stay true.
#[test]
fn ci_runs_the_readmes_two_set_up_commands() {
    let readme = read(&root().join("README.md"));
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README's first sh block");
    let commands: Vec<&str> = block
        .lines()
        .map(|line| line.split('#').next().unwrap().trim())
        .filter(|line| !line.is_empty())
        .collect();
    assert_eq!(commands, ["cargo run --release", "cargo test --release"]);
    let ci = read(&root().join(".ci/run"));
    for command in commands {
        assert!(
            ci.lines().any(|line| line.trim() == command),
            ".ci/run does not run `{command}` as the README gives it"
        );
    }
}

/// The README's "From Rust" block is `examples/readme.rs`, which `cargo test` compiles and
/// `cargo run --example readme` runs: the block cannot drift from the library's API.
#[test]
fn the_readmes_rust_block_is_the_example_that_compiles() {
    let example = read(&root().join("examples/readme.rs"));
    let begin = "// README:begin\n";
    let start = example.find(begin).expect("the begin marker") + begin.len();
    let end = example.find("    // README:end").expect("the end marker");
    let body: String = example[start..end]
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let readme = read(&root().join("README.md"));
    let section = &readme[readme.find("## From Rust").expect("the section")..];
    let block = section
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```\n").next())
        .expect("a rust block");
    assert_eq!(
        block, body,
        "the README's Rust block is not examples/readme.rs"
    );
}
