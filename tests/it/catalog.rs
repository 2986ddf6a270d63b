//! `druppie blocks` and `druppie skills`: the catalog.

use crate::support::{Fixture, druppie, repo_root};

#[test]
fn database_search_lists_postgresql_first() {
    let run = druppie(&repo_root(), &["blocks", "database", "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let hits: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).expect("JSON array");
    assert_eq!(hits[0]["id"], "postgresql");
    for key in [
        "id",
        "name",
        "type",
        "version",
        "description",
        "capabilities",
        "instantiable",
        "path",
    ] {
        assert!(hits[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(hits[0]["instantiable"], true);
    assert_eq!(hits[0]["path"], "bouwblokken/postgresql.md");
}

#[test]
fn druppie_catalog_files_load_as_catalog_only_blocks() {
    // The format of existing Druppie catalogs: these seven keys, a Markdown
    // body, no inputs and no templates.
    let f = Fixture::empty()
        .with(
            "bouwblokken/ai_image_sdxl.md",
            "---\nid: ai-image-sdxl\nname: AI Image Service (SDXL)\ntype: service\nversion: 1.0.0\nauth_group: []\ndescription: \"High-performance image generation service.\"\ncapabilities: [\"ai_image\"]\n---\n\n# Bouwblok: AI Image Service (SDXL)\n\n## 🎯 Doelstelling\nAfbeeldingen genereren.\n",
        )
        .with(
            "bouwblokken/git_gitea.md",
            "---\nid: git-gitea\nname: Gitea\ntype: platform\nversion: 1.21.0\nauth_group: [\"developers\"]\ndescription: \"Git hosting.\"\ncapabilities: [\"git\", \"forge\"]\nowner_team: platform\n---\n# Gitea\n",
        );
    let run = f.run(&["blocks", "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    insta::assert_snapshot!(run.stdout);
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
}

#[test]
fn table_output() {
    let run = Fixture::valid().run(&["blocks"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn markdown_without_frontmatter_is_a_warning() {
    let f = Fixture::valid().with("bouwblokken/overview.md", "# Overview\n\nAll our blocks.\n");
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stderr.contains("warning: no frontmatter"),
        "{}",
        run.stderr
    );
}

#[test]
fn catalog_commands_ignore_broken_plans() {
    let f = Fixture::valid().with("spec/plans/broken.yaml", "name: [\n");
    assert_eq!(f.run(&["validate"]).code, 1);
    let run = f.run(&["blocks", "sql"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.stdout.contains("postgresql"));
}

#[test]
fn a_broken_block_fails_the_catalog() {
    let f = Fixture::valid().with("bouwblokken/bad.md", "---\nid: bad\n---\n");
    let run = f.run(&["blocks"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stderr.contains("missing field"), "{}", run.stderr);
}

#[test]
fn skills_list_and_json() {
    let f = Fixture::empty()
        .with(
            "skills/planner.md",
            "---\nid: planner\nname: Planner\ndescription: Turns a sentence into a plan.\ntype: skill\ncategory: planning\nversion: 1.0.0\n---\nYou plan.\n",
        )
        .with(
            "skills/reviewer.md",
            "---\nid: reviewer\nname: Reviewer\ndescription: Reviews pull requests.\ntype: skill\ncategory: review\nversion: 1.0.0\n---\nYou review.\n",
        );
    let run = f.run(&["skills"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    insta::assert_snapshot!(run.stdout);
    let run = f.run(&["skills", "--json"]);
    let skills: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(skills.len(), 2);
    assert_eq!(skills[1]["category"], "review");
    assert_eq!(skills[0]["path"], "skills/planner.md");
}
