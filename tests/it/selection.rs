//! What a run covers: a spec with nothing to deploy, and `--plan`/`--env`
//! filters that name nothing.

use crate::support::Fixture;

const CATALOG_BLOCK: &str = "---\nid: queue\nname: Queue\ntype: service\nversion: 1.0.0\ndescription: A catalog entry without templates.\n---\n# Queue\n";

#[test]
fn a_catalog_only_spec_diffs_and_renders_as_nothing_to_change() {
    let f = Fixture::empty().with("bouwblokken/queue.md", CATALOG_BLOCK);
    let validate = f.run(&["validate"]);
    assert_eq!(validate.code, 0, "{}", validate.stderr);
    let diff = f.run(&["diff"]);
    assert_eq!(diff.code, 0, "{}", diff.transcript());
    assert!(diff.stdout.contains("0 repos"), "{}", diff.stdout);
    assert!(!diff.stderr.contains("panicked"), "{}", diff.stderr);
    let json = f.run(&["diff", "--json"]);
    assert_eq!(json.code, 0, "{}", json.transcript());
    let out = f.path().join("out");
    let render = f.run(&["render", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(render.code, 0, "{}", render.transcript());
    assert_eq!(std::fs::read_dir(&out).map_or(0, Iterator::count), 0);
}

#[test]
fn a_platform_without_plans_diffs_as_nothing_to_change() {
    let f = Fixture::valid();
    std::fs::remove_file(f.path().join("spec/plans/permits.yaml")).expect("remove the plan");
    let diff = f.run(&[
        "diff",
        "--repos",
        f.path().join("none").to_str().expect("utf-8"),
    ]);
    assert!(diff.code == 0 || diff.code == 2, "{}", diff.transcript());
    assert!(!diff.stderr.contains("panicked"), "{}", diff.stderr);
}

#[test]
fn an_unknown_environment_lists_the_valid_ones() {
    let f = Fixture::valid();
    let run = f.run(&["diff", "--env", "staging"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("unknown environment `staging`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the spec has `dev`, `prod`"),
        "{}",
        run.stderr
    );
    let near = f.run(&["diff", "--env", "prd"]);
    assert!(
        near.stderr.contains("did you mean `prod`?"),
        "{}",
        near.stderr
    );
}

#[test]
fn an_unknown_plan_suggests_the_nearest_and_lists_the_plans() {
    let f = Fixture::valid();
    let run = f.run(&["diff", "--plan", "permit"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("unknown plan `permit`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `permits`?"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the spec has `permits`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_plan_and_environment_that_do_not_meet_are_an_error() {
    let f = Fixture::valid()
        .edit("spec/plans/permits.yaml", "[dev, prod]", "[dev]")
        .edit(
            "spec/plans/permits.yaml",
            "overrides:\n  prod:\n    app: {replicas: 2}\n",
            "",
        );
    for command in ["diff", "render"] {
        let mut args = vec![command, "--plan", "permits", "--env", "prod"];
        let out = f.path().join(format!("out-{command}"));
        let out = out.to_str().expect("utf-8").to_owned();
        if command == "render" {
            args.extend(["--out", &out]);
        }
        let run = f.run(&args);
        assert_eq!(run.code, 1, "{command}: {}", run.transcript());
        assert!(
            run.stderr
                .contains("plan `permits` is not deployed to environment `prod`"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("plan `permits` lists `dev`"),
            "{}",
            run.stderr
        );
    }
}
