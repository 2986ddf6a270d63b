use std::path::Path;

use super::reload;
use crate::spec::{LoadOptions, Spec, load};

/// The example spec of this repository, copied into a directory of its own.
fn example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["bouwblokken", "skills", "spec", "templates"] {
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(here.join(sub))
            .arg(dir.path())
            .status()
            .expect("cp");
        assert!(status.success());
    }
    dir
}

fn loaded(root: &Path) -> Spec {
    load(root, &LoadOptions::default()).expect("loads")
}

fn edit(root: &Path, path: &str, from: &str, to: &str) {
    let at = root.join(path);
    let text = std::fs::read_to_string(&at).expect("read");
    assert!(text.contains(from), "{path} holds {from:?}");
    std::fs::write(&at, text.replacen(from, to, 1)).expect("write");
}

/// What a full load and a reload must agree on: everything.
fn shown(spec: &Spec) -> String {
    format!("{spec:?}")
}

#[test]
fn an_edited_plan_and_stack_reload_as_a_full_load_reads_them() {
    let dir = example();
    let root = dir.path();
    let mut spec = loaded(root);
    let changed = ["spec/plans/permits.yaml", "spec/stacks/static-site.yaml"];
    edit(
        root,
        changed[0],
        "replicas: 3",
        "replicas: 4\n      # more\n",
    );
    edit(root, changed[1], "replicas: 2", "replicas: 5");
    let changed: Vec<String> = changed.iter().map(|s| (*s).to_owned()).collect();
    reload(&mut spec, &changed, &LoadOptions::default()).expect("reloads");
    assert_eq!(shown(&spec), shown(&loaded(root)));
    assert!(shown(&spec).contains("replicas: 4"), "the new text is read");
}

#[test]
fn anything_but_an_edited_plan_or_stack_is_left_to_a_full_load() {
    let dir = example();
    let root = dir.path();
    let before = loaded(root);
    let refused = |spec: &mut Spec, changed: &[&str]| {
        let changed: Vec<String> = changed.iter().map(|s| (*s).to_owned()).collect();
        let was = shown(spec);
        assert!(
            reload(spec, &changed, &LoadOptions::default()).is_none(),
            "{changed:?}"
        );
        assert_eq!(shown(spec), was, "a refused reload changes nothing");
    };
    let mut spec = loaded(root);
    // A file the last load did not read as a plan or stack.
    std::fs::write(root.join("spec/plans/new.yaml"), "name: new\n").expect("write");
    refused(&mut spec, &["spec/plans/new.yaml"]);
    refused(&mut spec, &["spec/platform.yaml"]);
    refused(&mut spec, &["spec/policies/no-latest-tag.yaml"]);
    refused(&mut spec, &["spec/plans/../plans/permits.yaml"]);
    // A plan that no longer reads as one: the full load reports it.
    edit(
        root,
        "spec/plans/permits.yaml",
        "owner: team-permits",
        "owner: [x",
    );
    refused(&mut spec, &["spec/plans/permits.yaml"]);
    // A plan turned into a link.
    let plan = root.join("spec/plans/docs-portal.yaml");
    std::fs::remove_file(&plan).expect("rm");
    std::os::unix::fs::symlink("/etc/hostname", &plan).expect("link");
    refused(&mut spec, &["spec/plans/docs-portal.yaml"]);
    // A plan that pins a block's past version.
    edit(
        root,
        "spec/plans/druppie.yaml",
        "stack:",
        "blocks: {static-site: 1.0.0}\nstack:",
    );
    refused(&mut spec, &["spec/plans/druppie.yaml"]);
    assert_eq!(shown(&spec), shown(&before));
}

#[test]
fn a_reload_keeps_the_spec_within_its_byte_limit() {
    let dir = example();
    let root = dir.path();
    let total = LoadOptions::default().max_total_bytes - loaded(root).bytes_left;
    let options = LoadOptions {
        max_total_bytes: total + 100,
        ..LoadOptions::default()
    };
    let mut spec = load(root, &options).expect("loads");
    assert_eq!(spec.bytes_left, 100);
    let path = "spec/plans/permits.yaml";
    let grown = format!(
        "# {}\n",
        "x".repeat(usize::try_from(spec.bytes_left).expect("a few hundred bytes"))
    );
    let text = std::fs::read_to_string(root.join(path)).expect("read");
    std::fs::write(root.join(path), format!("{grown}{text}")).expect("write");
    assert!(reload(&mut spec, &[path.to_owned()], &options).is_none());
    assert!(
        load(root, &options).is_err(),
        "the full load refuses it too"
    );
}

#[test]
fn a_reload_keeps_the_loads_warnings_and_refuses_names_it_cannot_read() {
    let dir = example();
    let root = dir.path();
    // A Markdown file without frontmatter: a warning of the load.
    std::fs::write(root.join("bouwblokken/NOTES.md"), "just notes\n").expect("write");
    let validated = |spec: Spec| crate::spec::validate(spec).expect("valid").warnings;
    let mut spec = loaded(root);
    let warned = format!("{:?}", validated(loaded(root)));
    assert!(warned.contains("no frontmatter"), "{warned}");
    let plan = "spec/plans/permits.yaml".to_owned();
    edit(root, &plan, "replicas: 3", "replicas: 4");
    let lossy = "spec/plans/\u{FFFD}.yaml".to_owned();
    for changed in [vec![plan.clone(), plan.clone()], vec![plan.clone(), lossy]] {
        assert!(reload(&mut spec, &changed, &LoadOptions::default()).is_none());
    }
    reload(&mut spec, &[plan], &LoadOptions::default()).expect("reloads");
    assert_eq!(
        format!("{:?}", validated(spec)),
        format!("{:?}", validated(loaded(root)))
    );
}

#[test]
fn a_deeply_nested_plan_reloads_on_a_thread_with_a_small_stack() {
    let dir = example();
    let root = dir.path();
    let mut spec = loaded(root);
    let plan = "spec/plans/permits.yaml";
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    edit(
        root,
        plan,
        "replicas: 3",
        &format!("replicas: 3\n      nested: {deep}"),
    );
    let changed = vec![plan.to_owned()];
    // The reconcile worker's stack is far smaller than the parser needs
    // for 200 levels.
    let reloaded = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            reload(&mut spec, &changed, &LoadOptions::default())?;
            Some(shown(&spec))
        })
        .expect("thread")
        .join()
        .expect("no overflow");
    assert_eq!(reloaded, Some(shown(&loaded(root))));
}

#[test]
fn a_spec_read_again_validates_as_a_full_load_checking_again_only_what_was_read() {
    use crate::spec::validate::validate;
    let dir = example();
    let root = dir.path();
    let unchecked = |spec: &Spec| spec.plan_checks.iter().filter(|c| c.is_none()).count();
    let mut spec = validate(loaded(root)).expect("valid").spec;
    assert_eq!(spec.plan_checks.len(), spec.plans.len());
    assert_eq!(unchecked(&spec), 0);
    let plan = ["spec/plans/permits.yaml".to_owned()];
    let (right, wrong) = ("[dev, test, prod]", "[dev, test, prod, nowhere]");

    // A plan now wrong: its error, as a full load finds it.
    edit(root, &plan[0], right, wrong);
    reload(&mut spec, &plan, &LoadOptions::default()).expect("reloads");
    assert_eq!(unchecked(&spec), 1, "only the plan read again");
    let found = validate(spec).expect_err("an unknown environment");
    let whole = validate(loaded(root)).expect_err("an unknown environment");
    assert!(format!("{found:?}").contains("nowhere"), "{found:?}");
    assert_eq!(format!("{found:?}"), format!("{whole:?}"));

    // Right again; then another plan edited: what a full load
    // validates, the warnings of the plans not read again included.
    edit(root, &plan[0], wrong, right);
    let mut spec = validate(loaded(root)).expect("valid").spec;
    let other = ["spec/plans/docs-portal.yaml".to_owned()];
    edit(root, &other[0], "owner: ", "owner: x-");
    reload(&mut spec, &other, &LoadOptions::default()).expect("reloads");
    assert_eq!(unchecked(&spec), 1);
    let again = validate(spec).expect("valid");
    let whole = validate(loaded(root)).expect("valid");
    assert_eq!(
        format!("{:?}", again.warnings),
        format!("{:?}", whole.warnings)
    );
    assert_eq!(
        format!("{:?}", again.deployment),
        format!("{:?}", whole.deployment)
    );

    // A stack read again: every plan is checked again.
    let mut spec = again.spec;
    assert_eq!(unchecked(&spec), 0);
    let stack = ["spec/stacks/static-site.yaml".to_owned()];
    edit(root, &stack[0], "replicas: 2", "replicas: 5");
    reload(&mut spec, &stack, &LoadOptions::default()).expect("reloads");
    assert!(spec.plan_checks.is_empty());
    let again = validate(spec).expect("valid");
    assert_eq!(unchecked(&again.spec), 0);
}
