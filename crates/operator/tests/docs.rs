//! The documentation site (docs/, built by `make docs` with mdBook) kept honest by `cargo test`:
//!
//! - docs/reference/crds.md is generated from the CRDs in deploy/crds/, field by field; this
//!   fails when it drifts. Regenerate with `make crds` (which runs this test with
//!   `UPDATE_DOCS=1`, after regenerating the CRDs themselves).
//! - Every relative link and image in docs/ and README.md points at a file of the repository,
//!   every `#anchor` at a heading or an explicit `id` of its page, every page is in
//!   docs/SUMMARY.md and every SUMMARY entry exists. External links cannot be fetched here (no
//!   network), so they are only checked to be well formed. Markdown is parsed with
//!   pulldown-cmark, so links shown inside code blocks are not links.

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use test_cluster::support::update_requested;

/// Where the generated reference lives, relative to the repository.
const REFERENCE: &str = "docs/reference/crds.md";
/// The CRDs it is generated from, relative to the repository.
const CRD_DIR: &str = "deploy/crds";
/// Where the site's pages link files of the repository outside docs/ (the workspace's
/// `repository`, checked by `docs_links_anchors_and_summary_are_sound`).
const REPOSITORY_BLOB: &str =
    "https://github.com/model-validation-operator/model-validation-operator/blob/main";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

#[test]
fn crd_reference_matches_the_crds() {
    let root = repo_root();
    let rendered = crd_reference::render(&root.join(CRD_DIR));
    let path = root.join(REFERENCE);
    if update_requested("UPDATE_DOCS") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Written whole then renamed: the link check, running alongside, never reads half a file.
        let tmp = path.with_extension("md.tmp");
        std::fs::write(&tmp, &rendered).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == rendered,
        "{REFERENCE} is out of date with the CRDs in {CRD_DIR}: run `make crds` and commit the result"
    );
}

#[test]
fn crd_reference_covers_every_field_with_its_rules() {
    let out = crd_reference::render(&repo_root().join(CRD_DIR));
    // The three CRDs, each under its own API group.
    for heading in [
        "## ModelValidation (`ml.sigstore.dev/v1alpha1`)",
        "## ClusterModelValidation (`ml.sigstore.dev/v1alpha1`)",
        "## ModelValidation (`rhtas.redhat.com/v1alpha1`)",
    ] {
        assert!(out.contains(heading), "missing {heading}");
    }
    // A field with its path, type, requiredness, and a CEL rule with its message.
    assert!(out.contains("### `spec.model.path`"));
    assert!(out.contains("### `spec.config.publicKeyConfig.keyPem`"));
    assert!(out.contains("`self.contains('-----BEGIN PUBLIC KEY-----')`"));
    assert!(out.contains("publicKeyConfig.keyPem must hold a PEM public key"));
    // An enum and a default (the cluster policy's mode).
    assert!(out.contains("- **enum:** `enforce`, `warn`, `audit`"));
    assert!(out.contains("- **default:** `enforce`"));
}

#[test]
fn docs_links_anchors_and_summary_are_sound() {
    let root = repo_root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let repository = REPOSITORY_BLOB.trim_end_matches("/blob/main");
    assert!(
        manifest.contains(&format!("repository = \"{repository}\"")),
        "REPOSITORY_BLOB must name the workspace's repository ({repository})"
    );
    let problems = links::check(&root, "docs", &["README.md"]);
    assert!(
        problems.is_empty(),
        "{} problem(s) in the documentation:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// The checker's twin: a tree with one mistake of each kind, each reported, so the check above
/// cannot pass by finding nothing to look at.
#[test]
fn checker_reports_each_kind_of_broken_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "README.md",
        "[guide](docs/guide.md#setup) [gone](docs/gone.md)\n",
    );
    write(
        root,
        "docs/SUMMARY.md",
        "# Summary\n\n- [Guide](guide.md)\n- [Missing](missing.md)\n",
    );
    write(
        root,
        "docs/guide.md",
        "# Guide\n\n## Set up\n\n## Set up\n\n\
         [ok](#set-up-1) [dup](#set-up-2) [self](#nope)\n\
         [other](other.md#there) [escape](../../etc/passwd) [abs](/etc/hosts) [src](../Cargo.toml)\n\
         ![img](img/none.svg) [bad url](<https://exa mple.com>) [no host](https:///x)\n\
         <a href=\"other.md#nowhere\">html</a>\n\n\
         ```md\n[in code](not-checked.md)\n```\n",
    );
    write(root, "docs/other.md", "# Other\n\n<a id=\"there\"></a>\n");
    let problems = links::check(root, "docs", &["README.md"]);
    let expect = [
        "README.md:1: link `docs/guide.md#setup`: no heading or id `setup` in docs/guide.md",
        "README.md:1: link `docs/gone.md`: docs/gone.md does not exist",
        "docs/SUMMARY.md:4: link `missing.md`: docs/missing.md does not exist",
        "docs/guide.md:7: link `#set-up-2`: no heading or id `set-up-2` in docs/guide.md",
        "docs/guide.md:7: link `#nope`: no heading or id `nope` in docs/guide.md",
        "docs/guide.md:8: link `../../etc/passwd`: leaves the repository",
        "docs/guide.md:8: link `/etc/hosts`: absolute path: link relative to this file",
        "docs/guide.md:8: link `../Cargo.toml`: leaves the book (the site holds only docs/): link \
         the file by its repository URL, https://github.com/model-validation-operator/\
         model-validation-operator/blob/main/Cargo.toml",
        "docs/guide.md:9: image `img/none.svg`: docs/img/none.svg does not exist",
        "docs/guide.md:9: link `https://exa mple.com`: malformed URL",
        "docs/guide.md:9: link `https:///x`: malformed URL",
        "docs/guide.md:10: html link `other.md#nowhere`: no heading or id `nowhere` in docs/other.md",
        "docs/other.md: not listed in docs/SUMMARY.md (an orphan page)",
    ];
    for e in expect {
        assert!(
            problems.iter().any(|p| p == e),
            "expected `{e}` among:\n  {}",
            problems.join("\n  ")
        );
    }
    assert_eq!(
        problems.len(),
        expect.len(),
        "unexpected problems:\n  {}",
        problems.join("\n  ")
    );
}

/// The passing twin: the same kinds of links, all sound, report nothing.
#[test]
fn checker_accepts_a_sound_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "README.md",
        "# Project\n\n[guide](docs/guide.md#set-up) [site](https://example.com/a?b#c)\n",
    );
    write(
        root,
        "docs/SUMMARY.md",
        "# Summary\n\n[Intro](README.md)\n\n# Part\n\n- [Guide](guide.md)\n  - [Deep](sub/deep%20page.md)\n",
    );
    write(
        root,
        "docs/README.md",
        "# Intro\n\n[guide](./guide.md) [repo](https://github.com/o/r/blob/main/README.md#project)\n",
    );
    write(
        root,
        "docs/guide.md",
        "# Guide\n\n## Set up\n\n## Set up\n\n## `spec.x`: the *X* field!\n\n\
         [a](#set-up) [b](#set-up-1) [c](#specx-the-x-field) [d](sub/deep%20page.md#here)\n\
         ![svg](img/plot.svg) <img src=\"img/plot.svg\"> [mail](mailto:a@example.com)\n",
    );
    write(root, "docs/img/plot.svg", "<svg/>");
    write(
        root,
        "docs/sub/deep page.md",
        "# Deep\n\n<a name=\"here\"></a>\n",
    );
    let problems = links::check(root, "docs", &["README.md"]);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn slugs_follow_github_and_mdbook_rules() {
    assert_eq!(
        links::slug("Install into a cluster"),
        "install-into-a-cluster"
    );
    assert_eq!(links::slug("`spec.model.path`"), "specmodelpath");
    assert_eq!(
        links::slug("Policy guide: ClusterModelValidation for platform teams"),
        "policy-guide-clustermodelvalidation-for-platform-teams"
    );
    assert_eq!(
        links::slug("Keyless (Sigstore) -- offline"),
        "keyless-sigstore----offline"
    );
    assert_eq!(links::slug("snake_case & C++"), "snake_case--c");
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// docs/reference/crds.md rendered from the CRD YAML.
mod crd_reference {
    use super::*;

    /// The reference for every CRD that deploy/crds/kustomization.yaml lists, in its order.
    pub fn render(crd_dir: &Path) -> String {
        let kustomization = load(&crd_dir.join("kustomization.yaml"));
        let files: Vec<&str> = kustomization["resources"]
            .as_array()
            .expect("kustomization resources")
            .iter()
            .map(|f| f.as_str().expect("a file name"))
            .collect();
        // Every CRD file is in the kustomization, so none is left out of the reference.
        for entry in std::fs::read_dir(crd_dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                name == "kustomization.yaml" || files.contains(&name.as_str()),
                "{name} is not listed in {CRD_DIR}/kustomization.yaml"
            );
        }
        let mut out = String::from(HEADER);
        for file in files {
            render_crd(&mut out, &load(&crd_dir.join(file)));
        }
        out
    }

    const HEADER: &str = "\
# CRD reference

<!-- Generated by crates/operator/tests/docs.rs from deploy/crds/: do not edit, run `make crds`. -->

The custom resources the operator serves, field by field, as the API server validates them.
Paths start at the object's root (`spec.model.path`); `[]` stands for every item of a list and
`*` for every value of a map. A field is **required** when its object must carry it; a
**rule** is a CEL validation the API server evaluates on create and update, and its message is
what `kubectl` prints when the rule fails. How the fields are used: [the
operator](../operator.md) (ModelValidation) and [the policy guide](../policy-guide.md)
(ClusterModelValidation).
";

    fn load(path: &Path) -> Value {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn render_crd(out: &mut String, crd: &Value) {
        let spec = &crd["spec"];
        let names = &spec["names"];
        let group = spec["group"].as_str().expect("spec.group");
        let kind = names["kind"].as_str().expect("spec.names.kind");
        for version in spec["versions"].as_array().expect("spec.versions") {
            let name = version["name"].as_str().expect("version name");
            out.push_str(&format!(
                "\n## {kind} ({})\n\n",
                code(&format!("{group}/{name}"))
            ));
            line(
                out,
                "CRD",
                &code(crd["metadata"]["name"].as_str().unwrap_or("")),
            );
            line(out, "scope", spec["scope"].as_str().unwrap_or(""));
            let mut naming = vec![];
            for (key, label) in [("plural", "plural"), ("singular", "singular")] {
                if let Some(n) = names[key].as_str() {
                    naming.push(format!("{label} {}", code(n)));
                }
            }
            for (key, label) in [("shortNames", "short names"), ("categories", "categories")] {
                if let Some(list) = names[key].as_array() {
                    naming.push(format!("{label} {}", code_list(list)));
                }
            }
            line(out, "names", &naming.join(", "));
            let flags: Vec<&str> = [("served", "served"), ("storage", "storage version")]
                .into_iter()
                .filter(|(k, _)| version[*k].as_bool() == Some(true))
                .map(|(_, label)| label)
                .collect();
            line(out, "version", &flags.join(", "));
            if version["deprecated"].as_bool() == Some(true) {
                let warning = version["deprecationWarning"]
                    .as_str()
                    .unwrap_or("deprecated");
                line(out, "deprecated", &text_line(warning));
            }
            if let Some(columns) = version["additionalPrinterColumns"].as_array() {
                let columns: Vec<String> = columns
                    .iter()
                    .map(|c| {
                        let name = c["name"].as_str().unwrap_or("");
                        let path = c["jsonPath"].as_str().unwrap_or("");
                        format!("{} ({})", text_line(name), code(path))
                    })
                    .collect();
                line(out, "`kubectl get` columns", &columns.join(", "));
            }
            let schema = &version["schema"]["openAPIV3Schema"];
            // The root's own description is kube's "Auto-generated derived type" note: only its
            // rules say something.
            let root_rules = constraints(schema);
            if !root_rules.is_empty() {
                out.push_str("\n### (the object)\n\n");
                for c in root_rules {
                    out.push_str(&format!("- {c}\n"));
                }
            }
            walk_properties(out, schema, "");
        }
    }

    fn line(out: &mut String, label: &str, value: &str) {
        out.push_str(&format!("- **{label}:** {value}\n"));
    }

    /// Every property of `schema`, sorted, each followed by the fields inside it.
    fn walk_properties(out: &mut String, schema: &Value, prefix: &str) {
        let Some(props) = schema["properties"].as_object() else {
            return;
        };
        let required: BTreeSet<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let sorted: BTreeMap<&String, &Value> = props.iter().collect();
        for (name, field) in sorted {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            render_field(out, &path, field, required.contains(name.as_str()));
        }
    }

    fn render_field(out: &mut String, path: &str, field: &Value, required: bool) {
        out.push_str(&format!("\n### {}\n\n", code(path)));
        if let Some(description) = field["description"].as_str() {
            out.push_str(&markdown_text(description));
            out.push_str("\n\n");
        }
        line(out, "type", &type_of(field));
        line(out, "required", if required { "yes" } else { "no" });
        for c in constraints(field) {
            out.push_str(&format!("- {c}\n"));
        }
        // A list's items and a map's values: their constraints belong to this field; when
        // they are objects, their fields follow under `path[]` / `path.*`.
        for (key, each) in [
            ("items", "each item"),
            ("additionalProperties", "each value"),
        ] {
            let inner = &field[key];
            if !inner.is_object() {
                continue;
            }
            for c in constraints(inner) {
                out.push_str(&format!("- {each}: {c}\n"));
            }
        }
        walk_properties(out, field, path);
        for (key, suffix) in [("items", "[]"), ("additionalProperties", ".*")] {
            walk_properties(out, &field[key], &format!("{path}{suffix}"));
        }
    }

    fn type_of(s: &Value) -> String {
        if s["x-kubernetes-int-or-string"].as_bool() == Some(true) {
            return "int-or-string".into();
        }
        let base = s["type"].as_str().unwrap_or("any");
        let mut t = match base {
            "array" => format!("array of {}", type_of(&s["items"])),
            "object" if s["additionalProperties"].is_object() => {
                format!("map of string to {}", type_of(&s["additionalProperties"]))
            }
            other => other.to_string(),
        };
        if let Some(format) = s["format"].as_str() {
            t.push_str(&format!(" ({format})"));
        }
        t
    }

    /// The keys a field's own line items render; anything else in a schema is listed as is,
    /// so a new kind of constraint shows up rather than vanishing.
    const HANDLED: [&str; 10] = [
        "type",
        "format",
        "description",
        "properties",
        "items",
        "additionalProperties",
        "required",
        "nullable",
        "title",
        "x-kubernetes-int-or-string",
    ];

    /// The validation of one schema node, one Markdown list item each (without the `- `).
    fn constraints(s: &Value) -> Vec<String> {
        let mut out = vec![];
        let Some(obj) = s.as_object() else {
            return out;
        };
        if let Some(default) = obj.get("default") {
            out.push(format!("**default:** {}", json_code(default)));
        }
        if let Some(list) = obj.get("enum").and_then(Value::as_array) {
            let values: Vec<String> = list.iter().map(json_code).collect();
            out.push(format!("**enum:** {}", values.join(", ")));
        }
        if let Some(pattern) = obj.get("pattern").and_then(Value::as_str) {
            out.push(format!("**pattern:** {}", code(pattern)));
        }
        for (min, max, what) in [
            ("minLength", "maxLength", "length"),
            ("minItems", "maxItems", "number of items"),
            ("minProperties", "maxProperties", "number of entries"),
        ] {
            if let Some(range) = range(obj.get(min), obj.get(max)) {
                out.push(format!("**{what}:** {range}"));
            }
        }
        if let Some(range) = range(obj.get("minimum"), obj.get("maximum")) {
            let exclusive = |k: &str| obj.get(k).and_then(Value::as_bool) == Some(true);
            let note = match (exclusive("exclusiveMinimum"), exclusive("exclusiveMaximum")) {
                (false, false) => "",
                (true, false) => " (minimum excluded)",
                (false, true) => " (maximum excluded)",
                (true, true) => " (both bounds excluded)",
            };
            out.push(format!("**value:** {range}{note}"));
        }
        if obj.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
            out.push("**unique items**".into());
        }
        for rule in obj
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut item = format!("**rule:** {}", code(rule["rule"].as_str().unwrap_or("")));
            if let Some(message) = rule["message"].as_str() {
                item.push_str(&format!(", message: “{}”", text_line(message)));
            }
            if let Some(expr) = rule["messageExpression"].as_str() {
                item.push_str(&format!(", message expression: {}", code(expr)));
            }
            for key in ["reason", "fieldPath", "optionalOldSelf"] {
                if let Some(v) = rule.get(key) {
                    item.push_str(&format!(", {key}: {}", json_code(v)));
                }
            }
            out.push(item);
        }
        let consumed = [
            "default",
            "enum",
            "pattern",
            "minLength",
            "maxLength",
            "minItems",
            "maxItems",
            "minProperties",
            "maxProperties",
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "uniqueItems",
            "x-kubernetes-validations",
        ];
        let rest: BTreeMap<&String, &Value> = obj
            .iter()
            .filter(|(k, _)| !HANDLED.contains(&k.as_str()) && !consumed.contains(&k.as_str()))
            .collect();
        for (key, value) in rest {
            out.push(format!("**{}:** {}", text_line(key), json_code(value)));
        }
        out
    }

    fn range(min: Option<&Value>, max: Option<&Value>) -> Option<String> {
        match (min, max) {
            (None, None) => None,
            (Some(a), None) => Some(format!("at least {a}")),
            (None, Some(b)) => Some(format!("at most {b}")),
            (Some(a), Some(b)) => Some(format!("from {a} to {b}")),
        }
    }

    fn json_code(v: &Value) -> String {
        match v {
            Value::String(s) => code(s),
            other => code(&other.to_string()),
        }
    }

    fn code_list(list: &[Value]) -> String {
        let items: Vec<String> = list.iter().map(json_code).collect();
        items.join(", ")
    }

    /// `s` as an inline code span, whatever backticks it holds (one line: a code span cannot
    /// hold a line break that Markdown would keep).
    pub fn code(s: &str) -> String {
        let s = s.replace('\n', " ");
        let mut longest = 0;
        let mut run = 0;
        for c in s.chars() {
            run = if c == '`' { run + 1 } else { 0 };
            longest = longest.max(run);
        }
        let fence = "`".repeat(longest + 1);
        let pad = if s.starts_with('`') || s.ends_with('`') || longest > 0 {
            " "
        } else {
            ""
        };
        format!("{fence}{pad}{s}{pad}{fence}")
    }

    /// A schema description as Markdown text: its `code` spans kept, everything else that
    /// Markdown or HTML would interpret (emphasis, links, tags, code fences, headings)
    /// escaped, so a description can never break the page around it.
    pub fn markdown_text(description: &str) -> String {
        let lines: Vec<String> = description.lines().map(escape_line).collect();
        lines.join("\n").trim().to_string()
    }

    /// One line of a description escaped, for use on one line (a rule's message).
    fn text_line(s: &str) -> String {
        escape_line(&s.replace('\n', " "))
    }

    fn escape_line(line: &str) -> String {
        let line = line.trim().replace('\t', " ");
        // Single backticks delimit code spans when they pair up on the line; longer runs
        // (a code fence written inline) and an odd one out are escaped.
        let singles = backtick_runs(&line).filter(|n| *n == 1).count();
        let spans = singles % 2 == 0;
        let mut out = String::new();
        let mut in_code = false;
        let mut chars = line.chars().peekable();
        let mut first = true;
        while let Some(c) = chars.next() {
            if c == '`' {
                let mut n = 1;
                while chars.peek() == Some(&'`') {
                    chars.next();
                    n += 1;
                }
                if n == 1 && spans {
                    in_code = !in_code;
                    out.push('`');
                } else {
                    out.push_str(&"\\`".repeat(n));
                }
            } else if in_code {
                out.push(c);
            } else {
                match c {
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '&' => out.push_str("&amp;"),
                    '\\' | '*' | '_' | '[' | ']' | '|' | '~' => {
                        out.push('\\');
                        out.push(c);
                    }
                    // Line starts that open a block: a heading, a setext underline, a list
                    // marker that would renumber; `+`/`-`/digits keep their list meaning.
                    '#' | '=' if first => {
                        out.push('\\');
                        out.push(c);
                    }
                    _ => out.push(c),
                }
            }
            first = false;
        }
        // A line of only dashes under text would turn it into a heading.
        if !out.is_empty() && out.chars().all(|c| c == '-' || c == ' ') {
            out.insert(0, '\\');
        }
        out
    }

    fn backtick_runs(line: &str) -> impl Iterator<Item = usize> + '_ {
        line.split(|c| c != '`').map(str::len).filter(|n| *n > 0)
    }

    #[test]
    fn descriptions_cannot_break_the_page() {
        let tricky = "Use `keyPem`, not <b>html</b> or *emphasis* [links](x).\n\
                      ``` <quantity> ::= 1 ```\n# not a heading\n---\n\tindented";
        let out = markdown_text(tricky);
        assert_eq!(
            out,
            "Use `keyPem`, not &lt;b&gt;html&lt;/b&gt; or \\*emphasis\\* \\[links\\](x).\n\
             \\`\\`\\` &lt;quantity&gt; ::= 1 \\`\\`\\`\n\\# not a heading\n\\---\nindented"
        );
        // Rendered, it is one paragraph of text with one code span: no fence, heading or tag.
        let events: Vec<Event<'_>> = Parser::new(&out).collect();
        let starts: Vec<&Tag<'_>> = events
            .iter()
            .filter_map(|e| match e {
                Event::Start(t) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(starts, [&Tag::Paragraph]);
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, Event::Code(_)))
                .count(),
            1
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Event::Html(_) | Event::InlineHtml(_)))
        );
    }

    #[test]
    fn code_spans_hold_backticks() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(code("x\ny"), "`x y`");
    }
}

/// The link checker.
pub mod links {
    use super::*;

    /// Problems in the Markdown of `root`: every `.md` under `docs` (recursively, with its
    /// SUMMARY.md) and the `extra` files (paths relative to `root`), one message each, naming
    /// file, line, link and what is wrong. Empty when all is sound.
    pub fn check(root: &Path, docs: &str, extra: &[&str]) -> Vec<String> {
        let mut files = vec![];
        collect_md(&root.join(docs), &mut files);
        files.sort();
        files.extend(extra.iter().map(|e| root.join(e)));
        let book = root.join(docs);
        let mut pages = Pages::default();
        let mut problems = vec![];
        for file in &files {
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{}: unreadable: {e}", rel(root, file)));
                    continue;
                }
            };
            for link in links_in(&text) {
                if let Err(what) = check_link(root, &book, file, &link.dest, &mut pages) {
                    problems.push(format!(
                        "{}:{}: {} `{}`: {what}",
                        rel(root, file),
                        link.line,
                        link.kind,
                        link.dest
                    ));
                }
            }
        }
        problems.extend(check_summary(root, docs, &files));
        problems
    }

    /// Every page under `docs` is in SUMMARY.md, and every SUMMARY entry is a Markdown page
    /// under `docs` (that it exists is checked with every other link).
    fn check_summary(root: &Path, docs: &str, files: &[PathBuf]) -> Vec<String> {
        let docs_dir = root.join(docs);
        let summary = docs_dir.join("SUMMARY.md");
        let Ok(text) = std::fs::read_to_string(&summary) else {
            return vec![format!("{docs}/SUMMARY.md: missing")];
        };
        let mut problems = vec![];
        let mut listed = BTreeSet::new();
        for link in links_in(&text) {
            let (path, _) = split_fragment(&link.dest);
            let entry = format!("{docs}/SUMMARY.md:{}: entry `{}`", link.line, link.dest);
            if path.is_empty() || is_external(&link.dest) {
                problems.push(format!("{entry}: not a page (a draft or an external link)"));
                continue;
            }
            let Some(target) = decode(path).and_then(|p| normalize(&docs_dir.join(p))) else {
                continue; // reported by the link check
            };
            if !target.starts_with(&docs_dir) || target.extension().is_none_or(|e| e != "md") {
                problems.push(format!("{entry}: not a Markdown page under {docs}/"));
            } else if !listed.insert(target) {
                problems.push(format!("{entry}: listed twice"));
            }
        }
        for file in files {
            if file.starts_with(&docs_dir) && *file != summary && !listed.contains(file) {
                problems.push(format!(
                    "{}: not listed in {docs}/SUMMARY.md (an orphan page)",
                    rel(root, file)
                ));
            }
        }
        problems
    }

    fn collect_md(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                collect_md(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }

    fn rel(root: &Path, file: &Path) -> String {
        file.strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string()
    }

    /// One link, image or HTML `href`/`src` of a page.
    pub struct Link {
        pub line: usize,
        pub kind: &'static str,
        pub dest: String,
    }

    fn parser(text: &str) -> Parser<'_> {
        // GitHub's flavour: tables, footnotes, strikethrough and task lists are parsed as
        // such (their cells and items hold links). Heading attributes (`{#id}`) are not: GitHub
        // shows them as text, so no page relies on them.
        let options = Options::ENABLE_TABLES
            | Options::ENABLE_FOOTNOTES
            | Options::ENABLE_STRIKETHROUGH
            | Options::ENABLE_TASKLISTS;
        Parser::new_ext(text, options)
    }

    fn line_of(text: &str, offset: usize) -> usize {
        text[..offset].matches('\n').count() + 1
    }

    /// Every link, image and HTML `href`/`src` outside code.
    pub fn links_in(text: &str) -> Vec<Link> {
        let mut out = vec![];
        for (event, range) in parser(text).into_offset_iter() {
            let line = line_of(text, range.start);
            match event {
                Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    ..
                }) if link_type != LinkType::Email => out.push(Link {
                    line,
                    kind: "link",
                    dest: dest_url.to_string(),
                }),
                Event::Start(Tag::Image { dest_url, .. }) => out.push(Link {
                    line,
                    kind: "image",
                    dest: dest_url.to_string(),
                }),
                Event::Html(html) | Event::InlineHtml(html) => {
                    for (name, value) in html_attributes(&html) {
                        if name == "href" || name == "src" {
                            out.push(Link {
                                line,
                                kind: "html link",
                                dest: value,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The ids a page can be linked to: its headings' slugs (duplicates numbered `-1`, `-2`,
    /// as GitHub and mdBook do) and every HTML `id=` / `name=`.
    pub fn anchors(text: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut heading: Option<String> = None;
        for event in parser(text) {
            match event {
                Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
                Event::End(TagEnd::Heading(_)) => {
                    let base = slug(&heading.take().unwrap_or_default());
                    let n = seen.entry(base.clone()).or_insert(0);
                    out.insert(if *n == 0 {
                        base.clone()
                    } else {
                        format!("{base}-{n}")
                    });
                    *n += 1;
                }
                Event::Text(t) | Event::Code(t) => {
                    if let Some(h) = heading.as_mut() {
                        h.push_str(&t);
                    }
                }
                Event::Html(html) | Event::InlineHtml(html) => {
                    for (name, value) in html_attributes(&html) {
                        if name == "id" || name == "name" {
                            out.insert(value);
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// A heading's anchor: lower case, letters, digits, `-` and `_` kept, each space a `-`,
    /// everything else dropped (GitHub's rule, and mdBook's).
    pub fn slug(heading: &str) -> String {
        heading
            .trim()
            .chars()
            .filter_map(|c| {
                if c.is_alphanumeric() || c == '-' || c == '_' {
                    Some(c.to_lowercase().collect::<String>())
                } else if c.is_whitespace() {
                    Some("-".into())
                } else {
                    None
                }
            })
            .collect()
    }

    /// `name="value"` pairs of the tags in an HTML fragment (comments skipped). HTML in these
    /// pages is a few `<a>`, `<img>` and `<details>`: no entity or script handling needed.
    fn html_attributes(html: &str) -> Vec<(String, String)> {
        let mut out = vec![];
        let mut rest = html;
        while let Some(start) = rest.find('<') {
            rest = &rest[start..];
            if let Some(after) = rest.strip_prefix("<!--") {
                rest = after.find("-->").map_or("", |end| &after[end + 3..]);
                continue;
            }
            let end = rest.find('>').unwrap_or(rest.len());
            let tag = &rest[1..end];
            rest = &rest[end.min(rest.len())..];
            if rest.starts_with('>') {
                rest = &rest[1..];
            }
            // Skip the tag name, then read `name`, `name=value`, `name="value"`.
            let mut chars = tag
                .trim_start_matches(|c: char| !c.is_whitespace())
                .chars()
                .peekable();
            loop {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '=' || c.is_whitespace() {
                        break;
                    }
                    name.push(c);
                    chars.next();
                }
                if name.is_empty() {
                    break;
                }
                let mut value = String::new();
                if chars.peek() == Some(&'=') {
                    chars.next();
                    value = match chars.peek() {
                        Some(&q) if q == '"' || q == '\'' => {
                            chars.next();
                            chars.by_ref().take_while(|c| *c != q).collect()
                        }
                        _ => chars.by_ref().take_while(|c| !c.is_whitespace()).collect(),
                    };
                }
                out.push((name.to_ascii_lowercase(), value));
            }
        }
        out
    }

    /// The anchors of each Markdown page linked to, parsed once.
    #[derive(Default)]
    struct Pages(BTreeMap<PathBuf, BTreeSet<String>>);

    impl Pages {
        fn anchors(&mut self, page: &Path) -> &BTreeSet<String> {
            self.0
                .entry(page.to_path_buf())
                .or_insert_with(|| anchors(&std::fs::read_to_string(page).unwrap_or_default()))
        }
    }

    fn is_external(dest: &str) -> bool {
        scheme(dest).is_some() || dest.starts_with("//")
    }

    /// The URL scheme of `dest`, if it has one (`https`, `mailto`...).
    fn scheme(dest: &str) -> Option<String> {
        let colon = dest.find(':')?;
        let s = &dest[..colon];
        let valid = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        valid.then(|| s.to_ascii_lowercase())
    }

    fn split_fragment(dest: &str) -> (&str, Option<&str>) {
        let (path, fragment) = match dest.split_once('#') {
            Some((p, f)) => (p, Some(f)),
            None => (dest, None),
        };
        (path.split('?').next().unwrap_or(""), fragment)
    }

    fn check_link(
        root: &Path,
        book: &Path,
        from: &Path,
        dest: &str,
        pages: &mut Pages,
    ) -> Result<(), String> {
        if dest.is_empty() {
            return Err("empty link".into());
        }
        if let Some(scheme) = scheme(dest) {
            return match scheme.as_str() {
                "http" | "https" if well_formed_url(dest) => Ok(()),
                "http" | "https" => Err("malformed URL".into()),
                "mailto" if dest.contains('@') => Ok(()),
                other => Err(format!("unsupported scheme `{other}:`")),
            };
        }
        if dest.starts_with("//") {
            return Err("scheme-relative URL: write https://".into());
        }
        if dest.starts_with('/') {
            return Err("absolute path: link relative to this file".into());
        }
        let (path, fragment) = split_fragment(dest);
        let target = if path.is_empty() {
            from.to_path_buf()
        } else {
            let decoded = decode(path).ok_or("malformed percent-encoding")?;
            let joined = from.parent().unwrap().join(decoded);
            match normalize(&joined) {
                Some(t) if !t.starts_with(root) => return Err("leaves the repository".into()),
                // mdBook publishes docs/ only: a relative link from a page to another file of
                // the repository works on GitHub and is dead on the site.
                Some(t) if from.starts_with(book) && !t.starts_with(book) => {
                    return Err(format!(
                        "leaves the book (the site holds only {}/): link the file by its \
                         repository URL, {REPOSITORY_BLOB}/{}",
                        rel(root, book),
                        rel(root, &t)
                    ));
                }
                Some(t) => t,
                None => return Err("leaves the repository".into()),
            }
        };
        if !target.exists() {
            return Err(format!("{} does not exist", rel(root, &target)));
        }
        let Some(fragment) = fragment else {
            return Ok(());
        };
        let fragment = decode(fragment).ok_or("malformed percent-encoding")?;
        if fragment.is_empty() {
            return Err("empty anchor".into());
        }
        if target.extension().is_some_and(|e| e == "md") && target.is_file() {
            if pages.anchors(&target).contains(&fragment) {
                return Ok(());
            }
            return Err(format!(
                "no heading or id `{fragment}` in {}",
                rel(root, &target)
            ));
        }
        // Into a source file, only GitHub's line anchors (#L10, #L10-L20) mean something.
        if is_line_anchor(&fragment) && target.is_file() {
            return Ok(());
        }
        Err(format!(
            "anchor `{fragment}` into {}, which has no headings",
            rel(root, &target)
        ))
    }

    fn is_line_anchor(f: &str) -> bool {
        let line = |s: &str| {
            s.strip_prefix('L')
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        };
        match f.split_once('-') {
            Some((a, b)) => line(a) && line(b),
            None => line(f),
        }
    }

    /// `path` with `.` and `..` resolved without touching the file system; `None` when it
    /// climbs above the file system's root.
    pub fn normalize(path: &Path) -> Option<PathBuf> {
        let mut out = PathBuf::new();
        for c in path.components() {
            match c {
                Component::ParentDir => {
                    if !out.pop() {
                        return None;
                    }
                }
                Component::CurDir => {}
                other => out.push(other),
            }
        }
        Some(out)
    }

    /// Percent-decoding of a link's path or fragment (`deep%20page.md`).
    fn decode(s: &str) -> Option<String> {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }

    /// An http(s) URL that could be fetched: a host (name, IPv4 or `[IPv6]`), an optional
    /// port, and no character a URL cannot hold unescaped.
    fn well_formed_url(url: &str) -> bool {
        let Some(rest) = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
        else {
            return false;
        };
        if url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\"{}|\\^`".contains(c))
        {
            return false;
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit('@').next().unwrap_or("");
        let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
            match v6.split_once(']') {
                Some((h, p))
                    if !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit() || c == ':') =>
                {
                    ("v6", p.strip_prefix(':'))
                }
                _ => return false,
            }
        } else {
            match host_port.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (host_port, None),
            }
        };
        let host_ok = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        let port_ok = port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        host_ok && port_ok
    }

    #[test]
    fn urls() {
        for good in [
            "https://github.com/ossf/model-signing-spec",
            "http://127.0.0.1:5000/v2/",
            "https://[::1]:8443/x",
            "https://kubernetes.io/docs/a#b",
            "https://example.com?q=1",
        ] {
            assert!(well_formed_url(good), "{good}");
        }
        for bad in [
            "https://",
            "https:///path",
            "https://exa mple.com",
            "https://-bad.com",
            "https://a..b",
            "https://host:port/",
            "http:/one-slash.com",
        ] {
            assert!(!well_formed_url(bad), "{bad}");
        }
    }

    #[test]
    fn html_attributes_are_read() {
        assert_eq!(
            html_attributes("<!-- <a href=\"no\"> --><a id=\"x\" download href='y.md' class=z>"),
            [
                ("id".to_string(), "x".to_string()),
                ("download".into(), String::new()),
                ("href".into(), "y.md".into()),
                ("class".into(), "z".into())
            ]
        );
    }
}
