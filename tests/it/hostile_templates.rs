//! Templates that try to exhaust memory: string growth that fuel does not
//! see, `replace` and `join` bombs, a loop that outputs without end, and
//! many large files. Each is refused by the real binary with a located
//! error naming the template and the limit, exit 1, nothing written, and
//! the process's peak memory under the documented ceiling.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{Fixture, Run, git};

const MIB: u64 = 1024 * 1024;
/// The defaults of `[render]`.
const TEMPLATE_MEMORY: u64 = 64 * MIB;
const RUN_BYTES: u64 = 512 * MIB;
/// What druppie holds besides rendering (code, spec, git), generously.
const BASELINE: u64 = 64 * MIB;

/// The documented ceiling with the default limits:
/// `max_run_bytes + max_template_memory × threads + baseline`.
/// The baseline is for the optimised binary (a valid spec peaks at
/// 11 MiB there); a debug build's own code and data are several times
/// larger, so under `cfg(debug_assertions)` its measured peak on a valid
/// spec is added.
fn ceiling() -> u64 {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    RUN_BYTES + TEMPLATE_MEMORY * threads + BASELINE + debug_footprint()
}

/// A debug binary's peak on a valid spec (`validate`); 0 when optimised.
fn debug_footprint() -> u64 {
    static FOOTPRINT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    if !cfg!(debug_assertions) {
        return 0;
    }
    *FOOTPRINT.get_or_init(|| {
        let f = Fixture::valid();
        let (r, peak) = run(&f, &["validate"]);
        assert_eq!(r.code, 0, "{}", r.transcript());
        peak
    })
}

/// Runs druppie like [`crate::support::druppie`] and returns its peak
/// resident memory in bytes (the kernel's `ru_maxrss` for the child).
// `wait4` below reaps the child, with its own resource usage.
#[allow(clippy::zombie_processes)]
fn measured(cwd: &Path, args: &[&str]) -> (Run, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_druppie"))
        .args(args)
        .current_dir(cwd)
        .env_remove("DRUPPIE_LOG")
        .env("NO_COLOR", "1")
        .env("DRUPPIE_IT_TOKEN", "it-token")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run druppie");
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            pipe.read_to_end(&mut text).expect("read");
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("stderr")));
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with valid pointers.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let clean = |b: Vec<u8>| {
        String::from_utf8_lossy(&b)
            .into_owned()
            .replace(cwd.to_str().expect("utf-8"), "[ROOT]")
    };
    let run = Run {
        code,
        stdout: clean(stdout.join().expect("stdout")),
        stderr: clean(stderr.join().expect("stderr")),
    };
    // Linux reports kibibytes.
    (run, usage.ru_maxrss as u64 * 1024)
}

/// `druppie --config druppie.toml render --out <f>/out`, measured; the
/// output directory comes back too.
fn render_configured(f: &Fixture) -> (Run, u64, std::path::PathBuf) {
    let out = f.path().join("out");
    let (r, peak) = run(
        f,
        &[
            "--config",
            "druppie.toml",
            "render",
            "--out",
            out.to_str().expect("utf-8"),
        ],
    );
    (r, peak, out)
}

/// `druppie --spec <f> ARGS`, measured.
fn run(f: &Fixture, args: &[&str]) -> (Run, u64) {
    let mut full = vec!["--spec", f.path().to_str().expect("utf-8")];
    full.extend_from_slice(args);
    measured(f.path(), &full)
}

/// The example spec with `template` as the database's infra template
/// `bomb.yaml.j2`.
fn with_bomb(template: &str) -> Fixture {
    Fixture::valid().with("templates/postgresql/infra/bomb.yaml.j2", template)
}

/// `render --out`, `diff` and `validate --render` each refuse `f`: exit
/// 1, `message` (its parts around each `…`, which stands for anything)
/// and the template `at` in stderr, no output directory, peak memory
/// under the ceiling.
fn assert_refused(f: &Fixture, message: &str, at: &str) {
    let out = f.path().join("out");
    let out = out.to_str().expect("utf-8");
    for args in [
        &["render", "--out", out][..],
        &["diff"][..],
        &["validate", "--render"][..],
    ] {
        let (r, peak) = run(f, args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.transcript());
        assert!(
            message.split('…').all(|part| r.stderr.contains(part)),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains(&format!("--> {at}")),
            "{args:?}: the template is not named:\n{}",
            r.stderr
        );
        assert!(
            peak < ceiling(),
            "{args:?}: peak RSS {} MiB is over the ceiling {} MiB",
            peak / MIB,
            ceiling() / MIB
        );
        assert!(!Path::new(out).exists(), "{args:?}: nothing may be written");
    }
}

const BOMB: &str = "templates/postgresql/infra/bomb.yaml.j2";
const MEMORY: &str =
    "needs more than 64 MiB of memory (`[render] max_template_memory`); nothing was written";

#[test]
fn a_string_doubled_past_the_template_memory_is_refused() {
    // `instances` is an input: nothing here is folded while compiling.
    let f = with_bomb(
        "{% set a = 'x' * (50000000 * instances) %}{% set b = a ~ a ~ a ~ a ~ a ~ a ~ a ~ a %}{% set c = b ~ b ~ b ~ b %}{{ c|length }}\n",
    );
    assert_refused(
        &f,
        &format!(
            "error: the template `{BOMB}` for plan `permits`, component `db`, environment `…` {MEMORY}"
        ),
        BOMB,
    );
}

#[test]
fn a_replace_bomb_is_refused() {
    let f = with_bomb(
        "{% set a = 'x' * 1000 %}{% set b = a|replace('x', a) %}{% set c = b|replace('x', b) %}{{ c|length }}\n",
    );
    assert_refused(&f, MEMORY, BOMB);
}

#[test]
fn a_join_bomb_is_refused() {
    let f = with_bomb(
        "{% set a = 'x' * 10000000 %}{% set l = [a, a, a, a, a, a, a, a] %}{{ (l + l + l + l)|join(a)|length }}\n",
    );
    assert_refused(&f, MEMORY, BOMB);
}

#[test]
fn a_loop_that_outputs_past_the_file_size_is_refused() {
    let f = with_bomb(&format!(
        "{{% for i in range(1000) %}}{{% for j in range(1000) %}}{}\n{{% endfor %}}{{% endfor %}}",
        "x".repeat(200)
    ));
    assert_refused(
        &f,
        "error: rendered `apps/…/permits/db/bomb.yaml` is larger than 4 MiB (`[render] max_file_bytes`), rendering plan `permits`, component `db`, environment `…`",
        BOMB,
    );
}

#[test]
fn a_path_expression_past_the_template_memory_is_refused() {
    let f = Fixture::valid().with(
        "templates/postgresql/infra/{{ 'x' * 100000000 }}.yaml",
        "x: 1\n",
    );
    assert_refused(
        &f,
        // Environments render in parallel: whichever comes first is named.
        "for plan `permits`, component `db`, environment `…` needs more than 64 MiB",
        "templates/postgresql/infra/{{ 'x' * 100000000 }}.yaml",
    );
}

/// The example spec with `n` database templates that each render about
/// 4 MB (from an input: nothing the compiler can fold).
fn many_large_files(n: usize) -> Fixture {
    many_templates(n, "{{ 'x' * (4000000 * instances) }}\n")
}

/// The example spec with `n` database templates holding `text`.
fn many_templates(n: usize, text: &str) -> Fixture {
    let mut f = Fixture::valid();
    for i in 0..n {
        f = f.with(
            &format!("templates/postgresql/infra/big-{i:04}.yaml.j2"),
            text,
        );
    }
    f
}

#[test]
fn a_thousand_templates_holding_4_mb_constants_pass_the_run_limit_while_compiling() {
    let f = many_templates(1000, "{{ 'x' * 4000000 }}\n");
    assert_refused(
        &f,
        "the templates of this run, read and compiled, pass 512 MiB in all at `templates/postgresql/infra/big-0",
        "templates/postgresql/infra/big-0",
    );
}

#[test]
fn a_constant_too_large_to_compile_is_refused() {
    let f = with_bomb(
        "{% set a = 'x' * 50000000 %}{% set b = a ~ a ~ a ~ a ~ a ~ a ~ a ~ a %}{{ b|length }}\n",
    );
    assert_refused(
        &f,
        &format!("error: compiling the template `{BOMB}` needs more than 64 MiB of memory"),
        BOMB,
    );
}

#[test]
fn a_thousand_files_of_4_mb_pass_the_instance_limit_and_are_refused() {
    let f = many_large_files(1000);
    assert_refused(
        &f,
        "the files rendered for plan `permits`, component `db`, environment `…` and its plan in that environment pass 64 MiB in all",
        "templates/postgresql/infra/big-00",
    );
    let (r, _) = run(&f, &["diff"]);
    assert!(
        r.stderr.contains("`[render] max_instance_bytes`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("raise `max_instance_bytes` in the `[render]` section of druppie.toml"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_thousand_files_of_4_mb_pass_the_run_limit_when_instances_may_hold_more() {
    let f = many_large_files(1000).with(
        "druppie.toml",
        "[render]\nmax_instance_bytes = \"8GiB\"\nmax_instance_files = 100000\n",
    );
    let (r, peak, out) = render_configured(&f);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stderr
            .contains("the files rendered in this run pass 512 MiB in all at `apps/"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("(`[render] max_run_bytes`)"),
        "{}",
        r.stderr
    );
    assert!(peak < ceiling(), "peak RSS {} MiB", peak / MIB);
    assert!(!out.exists());
}

#[test]
fn too_many_files_for_one_instance_are_refused() {
    let mut f = Fixture::valid().with("druppie.toml", "[render]\nmax_instance_files = 50\n");
    for i in 0..60 {
        f = f.with(
            &format!("templates/postgresql/infra/f{i:02}.yaml"),
            "x: 1\n",
        );
    }
    let (r, _) = run(&f, &["--config", "druppie.toml", "validate", "--render"]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stderr.contains(
            "more than 50 files rendered for plan `permits`, component `db`, environment `"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("(`[render] max_instance_files`)"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_wiring_expression_past_the_template_memory_is_refused() {
    let f = Fixture::valid().edit(
        "spec/stacks/webapp-db.yaml",
        "database_secret: \"{{ components.db.outputs.secret }}\"",
        "database_secret: \"{% set a = 'x' * (50000000 * components|length) %}{{ (a ~ a ~ a)|length }}\"",
    );
    let (r, peak) = run(&f, &["validate", "--render"]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stderr.contains("error: the input `database_secret` of component `app` for plan `permits` in environment `"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(MEMORY), "{}", r.stderr);
    assert!(
        r.stderr.contains("--> spec/stacks/webapp-db.yaml:9:24"),
        "{}",
        r.stderr
    );
    assert!(peak < ceiling(), "peak RSS {} MiB", peak / MIB);
}

#[test]
fn a_wiring_value_larger_than_a_file_may_be_is_refused() {
    let f = Fixture::valid().edit(
        "spec/stacks/webapp-db.yaml",
        "database_secret: \"{{ components.db.outputs.secret }}\"",
        "database_secret: \"{{ 'x' * 5000000 }}\"",
    );
    let (r, _) = run(&f, &["validate", "--render"]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stderr
            .contains("cannot resolve input `database_secret` of component `app` in permits/dev"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("pass 4 MiB (`[render] max_file_bytes`)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("--> spec/stacks/webapp-db.yaml:"),
        "{}",
        r.stderr
    );
}

#[test]
fn raising_the_limits_lets_a_large_legitimate_template_render() {
    let template =
        "{% set line = 'abcdefgh' * 10 %}{% for i in range(70000) %}{{ line }}\n{% endfor %}";
    let f = with_bomb(template);
    let (r, _) = run(&f, &["validate", "--render"]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stderr.contains("`[render] max_file_bytes`"),
        "{}",
        r.stderr
    );
    let f = f.with(
        "druppie.toml",
        "[render]\nmax_file_bytes = \"8MiB\"\nmax_template_memory = \"128 MiB\"\n",
    );
    let (r, _, out) = render_configured(&f);
    assert_eq!(r.code, 0, "{}", r.transcript());
    let rendered = out.join("infra/apps/dev/permits/db/bomb.yaml");
    assert_eq!(
        std::fs::metadata(&rendered).expect("rendered").len(),
        70000 * 81
    );
}

#[test]
fn a_size_in_render_that_is_not_a_size_is_located() {
    let f = Fixture::valid().with("druppie.toml", "[render]\nmax_file_bytes = \"4 megs\"\n");
    let (r, _) = run(&f, &["--config", "druppie.toml", "validate", "--render"]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(r.stderr.contains("`4 megs` is not a size"), "{}", r.stderr);
    assert!(r.stderr.contains("druppie.toml:2:18"), "{}", r.stderr);
}

#[test]
fn an_undefined_variable_is_named_with_the_nearest_names_and_what_was_rendered() {
    let f = Fixture::valid().with(
        "templates/webapp-python/infra/deployment.yaml.j2",
        "kind: Deployment\nspec:\n  replicas: {{ replica }}\n",
    );
    let (r, _) = run(&f, &["validate", "--render"]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    let first = r.stderr.split("\n\n").next().expect("one error");
    assert_eq!(
        first,
        "error: undefined value `replica` (rendering plan `permits`, component `app`, environment `dev`)\n \
         --> templates/webapp-python/infra/deployment.yaml.j2:3:16\n  \
         |\n\
         3 |   replicas: {{ replica }}\n  \
         |                ^^^^^^^\n  \
         = help: did you mean `replicas`?"
    );
    let f = Fixture::valid().with(
        "templates/webapp-python/infra/deployment.yaml.j2",
        "url: {{ components.db.outputs.secrt }}\n",
    );
    let (r, _) = run(&f, &["validate", "--render"]);
    assert!(
        r.stderr.contains("error: undefined value `components.db.outputs.secrt` (rendering plan `permits`, component `app`, environment `dev`)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("= help: did you mean `components.db.outputs.secret`?"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_undefined_name_in_wiring_gets_the_nearest_defined_name() {
    let f = Fixture::valid().edit(
        "spec/stacks/webapp-db.yaml",
        "{{ components.db.outputs.secret }}",
        "{{ components.db.outputs.secret }}-{{ namespce }}",
    );
    let (r, _) = run(&f, &["validate", "--render"]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stderr.contains(
            "cannot resolve input `database_secret` of component `app` in permits/dev: undefined value: `namespce` is undefined"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("= help: did you mean `namespace`?"),
        "{}",
        r.stderr
    );
}

/// The apply setup with `template` committed as the database's template.
fn apply_setup_with(template: &str) -> crate::apply::Setup {
    let s = crate::apply::setup("platform-team");
    std::fs::write(
        s.f.path().join("templates/postgresql/infra/bomb.yaml.j2"),
        template,
    )
    .expect("write");
    git(s.f.path(), &["add", "-A"]);
    git(s.f.path(), &["commit", "-qm", "hostile template"]);
    s
}

#[test]
fn apply_of_a_memory_bomb_exits_before_anything_is_written() {
    let s = apply_setup_with(
        "{% set a = 'x' * 50000000 %}{% set b = a ~ a ~ a ~ a ~ a ~ a ~ a ~ a %}{{ b|length }}\n",
    );
    let infra = s.forge().join("infra.git");
    let refs = || {
        git(
            &infra,
            &["for-each-ref", "--format=%(refname) %(objectname)"],
        )
    };
    let before = refs();
    let spec_refs = git(
        s.f.path(),
        &["for-each-ref", "--format=%(refname) %(objectname)"],
    );
    let config = s.config.to_str().expect("utf-8");
    let (r, peak) = measured(
        s.f.path(),
        &[
            "--spec",
            s.f.path().to_str().expect("utf-8"),
            "--config",
            config,
            "apply",
            "--yes",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(r.stderr.contains(MEMORY), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("--> {BOMB}")), "{}", r.stderr);
    assert!(peak < ceiling(), "peak RSS {} MiB", peak / MIB);
    let repos: Vec<String> = std::fs::read_dir(s.forge())
        .expect("forge")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(repos, ["infra.git"], "no project repo created");
    assert_eq!(refs(), before, "nothing pushed to the infra repo");
    assert_eq!(
        git(
            s.f.path(),
            &["for-each-ref", "--format=%(refname) %(objectname)"]
        ),
        spec_refs,
        "no audit event"
    );
    git(&infra, &["fsck", "--strict"]);
}

#[test]
fn apply_of_too_large_a_file_is_refused_before_anything_is_written() {
    let s = apply_setup_with("{{ 'x' * 5000000 }}\n");
    let infra = s.forge().join("infra.git");
    let before = git(
        &infra,
        &["for-each-ref", "--format=%(refname) %(objectname)"],
    );
    let r = s.f.run(&[
        "--config",
        s.config.to_str().expect("utf-8"),
        "apply",
        "--yes",
    ]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stderr.contains("`[render] max_file_bytes`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&format!("--> {BOMB}")), "{}", r.stderr);
    assert_eq!(
        git(
            &infra,
            &["for-each-ref", "--format=%(refname) %(objectname)"]
        ),
        before
    );
    git(&infra, &["fsck", "--strict"]);
}

/// The daemon serves on after a commit refused for good (not retried)
/// for a template's memory, with the error located at `at`.
fn refused_for_memory(d: &crate::serve::Daemon, at: &str) {
    assert_eq!(d.get("/healthz").0, 200, "the daemon serves on");
    assert_eq!(
        d.metric("druppie_reconciles_total{result=\"terminal\"}"),
        1.0,
        "refused for good, not retried"
    );
    let status = d.json("/api/v1/status");
    let error = status["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains(MEMORY), "{status}");
    assert!(error.contains(&format!("--> {at}")), "{status}");
}

#[test]
fn a_hostile_spec_commit_leaves_the_daemon_serving_and_a_fixed_one_reconciles() {
    use crate::serve::{Daemon, push_payload, push_spec, serve_setup};
    let s = serve_setup();
    let d = Daemon::start(&s);
    assert_eq!(d.state("permits", "dev")["state"], "in-sync");
    let work = s.tmp.path().join("spec-work");
    let push = |message: &str| push_spec(&work, message);
    let bomb = work.join("templates/postgresql/infra/bomb.yaml.j2");
    std::fs::write(
        &bomb,
        "{% set a = 'x' * 50000000 %}{% set b = a ~ a ~ a ~ a ~ a ~ a ~ a ~ a %}{{ b|length }}\n",
    )
    .expect("write");
    let hostile = push("a hostile template");
    let before = d.reconciles();
    assert_eq!(
        d.hook("push", "bomb-1", &push_payload("spec", &hostile), None),
        202
    );
    d.wait("the hostile commit reconciled", |d| d.reconciles() > before);
    refused_for_memory(&d, BOMB);
    let dev = d.state("permits", "dev");
    assert_eq!(dev["state"], "failed", "{dev}");
    assert!(
        dev["message"]
            .as_str()
            .unwrap_or_default()
            .contains("max_template_memory"),
        "{dev}"
    );

    std::fs::write(&bomb, "kind: ConfigMap\n").expect("write");
    let fixed = push("the template fixed");
    let before = d.reconciles();
    assert_eq!(
        d.hook("push", "bomb-2", &push_payload("spec", &fixed), None),
        202
    );
    d.wait("the fixed commit reconciled", |d| d.reconciles() > before);
    assert_eq!(d.state("permits", "dev")["state"], "in-sync");
    assert_eq!(
        git(
            &s.forge().join("infra.git"),
            &["show", "main:apps/dev/permits/db/bomb.yaml"]
        ),
        "kind: ConfigMap\n"
    );
}

#[test]
fn composed_values_count_towards_the_run_limit() {
    let f = Fixture::valid().with("druppie.toml", "[render]\nmax_run_bytes = 40\n");
    let (r, _) = run(&f, &["--config", "druppie.toml", "validate", "--render"]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    assert!(
        r.stderr
            .contains("the values composed for this run pass 40 bytes at plan `permits`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("--> spec/plans/permits.yaml"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_plan_edit_that_makes_a_template_too_large_is_refused_by_the_kept_check() {
    use crate::serve::{Daemon, push_payload, push_spec, serve_setup};
    let s = serve_setup();
    let work = s.tmp.path().join("spec-work");
    let push = |message: &str| push_spec(&work, message);
    // A template whose memory grows with an input: within the budget at
    // a few replicas, past it at twenty (the most the block allows).
    let grow = "templates/webapp-python/infra/grow.yaml.j2";
    std::fs::write(
        work.join(grow),
        "{% set s = 'x' * (replicas * 5000000) %}kind: ConfigMap\nsize: {{ s|length }}\n",
    )
    .expect("write");
    push("a template that grows with the replicas");
    let d = Daemon::start(&s);
    assert_eq!(d.state("permits", "dev")["state"], "in-sync");
    let plan = work.join("spec/plans/permits.yaml");
    let text = std::fs::read_to_string(&plan).expect("plan");
    let hook = |delivery: &str, commit: &str| {
        let before = d.reconciles();
        assert_eq!(
            d.hook("push", delivery, &push_payload("spec", commit), None),
            202
        );
        d.wait("the push reconciled", |d| d.reconciles() > before);
    };
    // One plan's edit: the daemon and its kept check read that file again.
    std::fs::write(&plan, text.replace("replicas: 2", "replicas: 3")).expect("write");
    hook("edit-1", &push("three replicas"));
    let logs = d.logs();
    let passed = logs
        .iter()
        .rev()
        .find(|l| l.contains("render check passed"));
    assert!(
        passed.is_some_and(|l| l.contains(r#""files_read_again":1"#)),
        "{passed:?}"
    );

    std::fs::write(&plan, text.replace("replicas: 2", "replicas: 20")).expect("write");
    hook("edit-2", &push("twenty replicas"));
    refused_for_memory(&d, grow);

    // The check that refused ended; the next one starts afresh.
    std::fs::write(&plan, text.replace("replicas: 2", "replicas: 4")).expect("write");
    hook("edit-3", &push("four replicas"));
    assert_eq!(d.state("permits", "dev")["state"], "in-sync");
    let infra = s.forge().join("infra.git");
    let shown = git(&infra, &["show", "main:apps/dev/permits/app/grow.yaml"]);
    assert!(shown.contains("size: "), "{shown}");
    let logs = d.logs();
    let passed = logs
        .iter()
        .rev()
        .find(|l| l.contains("render check passed"));
    assert!(
        passed.is_some_and(|l| !l.contains("files_read_again")),
        "a new child loads the whole spec: {passed:?}"
    );
}
