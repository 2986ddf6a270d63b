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
fn a_broken_block_is_reported_and_the_rest_is_listed() {
    let f = Fixture::valid().with("bouwblokken/bad.md", "---\nid: bad\n---\n");
    let run = f.run(&["blocks", "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let hits: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).expect("JSON array");
    let ids: Vec<&str> = hits.iter().filter_map(|h| h["id"].as_str()).collect();
    assert_eq!(ids, ["postgresql", "webapp-python"]);
    assert!(run.stderr.contains("missing field"), "{}", run.stderr);
    assert!(
        run.stderr.contains("--> bouwblokken/bad.md"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("listing what loaded"), "{}", run.stderr);
    // The same file still makes the spec invalid.
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("--> bouwblokken/bad.md"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_broken_skill_is_reported_and_the_rest_is_listed() {
    let f = Fixture::empty()
        .with(
            "skills/good.md",
            "---\nname: Good\ndescription: Fine.\n---\nbody\n",
        )
        .with("skills/bad.md", "---\nname: [unclosed\n---\nbody\n");
    let run = f.run(&["skills", "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let hits: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).expect("JSON array");
    assert_eq!(hits.len(), 1, "{}", run.stdout);
    assert_eq!(hits[0]["id"], "good");
    assert!(run.stderr.contains("--> skills/bad.md"), "{}", run.stderr);
    assert_eq!(f.run(&["validate"]).code, 1);
}

/// A catalog in the format of existing Druppie catalogs: inputs and
/// outputs as lists of names, skills named by their file.
fn druppie_format_catalog() -> Fixture {
    Fixture::empty()
        .with(
            "bouwblokken/ocr_tesseract.md",
            "---\nid: ocr-tesseract\nname: OCR (Tesseract)\ntype: service\nversion: 1.2.0\nauth_group: [\"developers\"]\ndescription: \"Reads text from scanned documents.\"\ncapabilities: [\"ocr\", \"documents\"]\ninputs: [\"filename\", \"language\"]\noutputs: [\"text\", \"confidence\"]\n---\n\n# Bouwblok: OCR\n\nLeest tekst uit gescande documenten.\n",
        )
        .with(
            "bouwblokken/pdf_render.md",
            "---\nid: pdf-render\nname: PDF renderer\ntype: service\nversion: 0.3.0\nauth_group: []\ndescription: \"Renders HTML to PDF.\"\ncapabilities: [\"pdf\"]\ninputs:\n  - html\noutputs:\n  - pdf_url\n---\n# PDF renderer\n",
        )
        .with(
            "skills/code_reviewer.md",
            "---\nname: Code reviewer\ndescription: Reviews pull requests for security problems.\ncategory: review\n---\nYou review code.\n",
        )
        .with(
            "skills/architect.md",
            "---\nname: Architect\ndescription: Designs the building blocks of a solution.\n---\nYou design.\n",
        )
}

#[test]
fn a_druppie_format_catalog_validates_and_is_searchable() {
    let f = druppie_format_catalog();
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    // `code_reviewer` is not a DNS label: a warning, not an error.
    assert!(
        run.stderr
            .contains("warning: skill id `code_reviewer` comes from the file name"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("`architect`"), "{}", run.stderr);

    let run = f.run(&["blocks", "documents", "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let hits: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).expect("JSON array");
    assert_eq!(hits[0]["id"], "ocr-tesseract");
    assert_eq!(
        hits[0]["inputs"],
        serde_json::json!(["filename", "language"])
    );
    assert_eq!(
        hits[0]["outputs"],
        serde_json::json!(["text", "confidence"])
    );
    assert_eq!(hits[0]["instantiable"], false);

    let run = f.run(&["skills", "security", "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let hits: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).expect("JSON array");
    assert_eq!(hits[0]["id"], "code_reviewer");
    let run = f.run(&["skills", "--json"]);
    let hits: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).expect("JSON array");
    let ids: Vec<&str> = hits.iter().filter_map(|h| h["id"].as_str()).collect();
    assert_eq!(ids, ["architect", "code_reviewer"]);
}

#[test]
fn a_listed_input_takes_any_value_and_is_not_required() {
    // A block in list form, given templates, used by a stack: its
    // inputs take any value, and leaving them out is fine.
    let f = Fixture::valid()
        .with(
            "bouwblokken/ocr.md",
            "---\nid: ocr\nname: OCR\ntype: service\nversion: 1.0.0\ndescription: d\ninputs: [\"filename\", \"language\"]\noutputs: [\"text\"]\n---\n",
        )
        .with("templates/ocr/infra/config.yaml.j2", "file: {{ filename | default('none') }}\n")
        .with(
            "spec/stacks/ocr.yaml",
            "name: ocr\ncomponents:\n  ocr:\n    block: ocr\n    inputs: {filename: [1, 2]}\n",
        )
        .with(
            "spec/plans/scan.yaml",
            "name: scan\nstack: ocr\nowner: team\nenvironments: [dev]\n",
        );
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    // A listed output is documentation: nothing can wire it.
    let f = f.with(
        "spec/stacks/ocr.yaml",
        "name: ocr\ncomponents:\n  first: {block: ocr}\n  ocr:\n    block: ocr\n    inputs: {filename: \"{{ components.first.outputs.text }}\"}\n",
    );
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("has no output `text`")
            && run
                .stderr
                .contains("`text` is only listed in the block's `outputs:`"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_explicit_invalid_skill_id_is_still_an_error() {
    let f = Fixture::empty().with(
        "skills/x.md",
        "---\nid: Not/A-Name\nname: X\ndescription: d\n---\nbody\n",
    );
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("skill id `Not/A-Name`"),
        "{}",
        run.stderr
    );
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

/// What a planner asks the catalog: whole sentences. The block a person
/// would pick comes first, the second where the sentence asks for two.
#[test]
fn sentences_find_the_blocks_they_ask_for_first() {
    let ranked = |sentence: &str| -> Vec<String> {
        let run = druppie(&repo_root(), &["blocks", sentence, "--json"]);
        assert_eq!(run.code, 0, "{}", run.transcript());
        let hits: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).expect("JSON");
        hits.iter()
            .map(|h| h["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    for (sentence, first) in [
        (
            "a permit portal with a database",
            &["postgresql", "webapp-python"][..],
        ),
        ("which blocks give me a database?", &["postgresql"]),
        (
            "a static documentation site for team docs",
            &["static-site"],
        ),
        // A cache beats a block whose documentation mentions permits.
        ("a redis cache for permits", &["redis"]),
        ("object storage for backups", &["object-storage-minio"]),
        (
            "monitoring and dashboards for the cluster",
            &["observability-plg"],
        ),
        ("single sign-on with keycloak", &["iam-keycloak"]),
        ("a python api", &["webapp-python"]),
        ("an s3 bucket for files", &["object-storage-minio"]),
        ("a key-value store in memory", &["redis"]),
    ] {
        let got = ranked(sentence);
        assert_eq!(
            &got[..first.len().min(got.len())],
            first,
            "{sentence}: {got:?}"
        );
    }
}
