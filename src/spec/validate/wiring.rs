//! Wiring between components: `{{ components.<c>.outputs.<o> }}` in an input
//! value makes that component depend on `<c>`. References must resolve and
//! the dependencies may not form a cycle.

use std::sync::LazyLock;

use serde_json::Value;

use super::Check;
use crate::spec::load::Spec;
use crate::spec::model::{InputValues, Plan, Stack};
use crate::spec::source::FileId;
use crate::spec::yaml::{Spanned, SpannedMap};

/// One `components...` reference found in a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub component: String,
    /// The attribute read (`outputs`, `block`, `repo`), if any.
    pub attribute: Option<String>,
    /// The output read, when the attribute is `outputs`.
    pub output: Option<String>,
}

static REFERENCE: LazyLock<regex::Regex> = LazyLock::new(|| {
    let access = r#"(?:\s*\.\s*([A-Za-z0-9_]+)|\s*\[\s*["']([^"']*)["']\s*\])"#;
    regex::Regex::new(&format!(r"\bcomponents{access}{access}?{access}?"))
        .expect("static regex is valid")
});

/// The component references in `text`, in order.
pub fn references(text: &str) -> Vec<Reference> {
    REFERENCE
        .captures_iter(text)
        .map(|cap| {
            let part = |i: usize| {
                cap.get(i)
                    .or_else(|| cap.get(i + 1))
                    .map(|m| m.as_str().to_owned())
            };
            let attribute = part(3);
            let output = if attribute.as_deref() == Some("outputs") {
                part(5)
            } else {
                None
            };
            Reference {
                component: part(1).unwrap_or_default(),
                attribute,
                output,
            }
        })
        .collect()
}

/// Finds `components` in a string; built once (a plain `contains` sets up
/// its search on every call, and every string of every plan is searched).
static COMPONENTS: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new("components"));

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if COMPONENTS.find(s.as_bytes()).is_some() => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// A dependency edge: component `from` reads component `to`, written at `at`.
struct Edge<'s> {
    from: usize,
    to: usize,
    file: FileId,
    at: &'s Spanned<Value>,
}

/// Input layers of a stack (and optionally a plan): (file, component, inputs).
fn layers<'s>(stack: &'s Stack, plan: Option<&'s Plan>) -> Vec<(FileId, &'s str, &'s InputValues)> {
    let mut out: Vec<(FileId, &str, &InputValues)> = stack
        .components
        .iter()
        .map(|(n, c)| (stack.file, n.value.as_str(), &c.inputs))
        .collect();
    per_env(&mut out, stack.file, &stack.environments);
    if let Some(plan) = plan {
        out.extend(
            plan.inputs
                .iter()
                .map(|(n, i)| (plan.file, n.value.as_str(), i)),
        );
        per_env(&mut out, plan.file, &plan.overrides);
    }
    out
}

fn per_env<'s>(
    out: &mut Vec<(FileId, &'s str, &'s InputValues)>,
    file: FileId,
    map: &'s SpannedMap<SpannedMap<InputValues>>,
) {
    for (_, comps) in map.iter() {
        out.extend(comps.iter().map(|(n, i)| (file, n.value.as_str(), i)));
    }
}

fn edges<'s>(stack: &'s Stack, plan: Option<&'s Plan>) -> Vec<Edge<'s>> {
    let index = |name: &str| stack.components.0.iter().position(|(k, _)| k.value == name);
    let mut out = Vec::new();
    for (file, comp, inputs) in layers(stack, plan) {
        let Some(from) = index(comp) else { continue };
        for (_, value) in inputs.iter() {
            let mut texts = Vec::new();
            strings(&value.value, &mut texts);
            for r in texts.iter().flat_map(|t| references(t)) {
                if let Some(to) = index(&r.component) {
                    out.push(Edge {
                        from,
                        to,
                        file,
                        at: value,
                    });
                }
            }
        }
    }
    out
}

/// Components in dependency order (a component after every component it
/// reads), ties broken by declaration order.
///
/// # Errors
/// The components of a cycle, starting and ending with the same name.
pub fn component_order(stack: &Stack, plan: Option<&Plan>) -> Result<Vec<String>, Vec<String>> {
    let names: Vec<&str> = stack.components.keys().collect();
    let deps: Vec<(usize, usize)> = edges(stack, plan).iter().map(|e| (e.from, e.to)).collect();
    topo(names.len(), &deps)
        .map(|order| order.into_iter().map(|i| names[i].to_owned()).collect())
        .map_err(|cycle| cycle.into_iter().map(|i| names[i].to_owned()).collect())
}

/// Depth-first topological sort; `Err` holds a cycle as a closed path.
/// Nodes are started in order and each node's targets taken in order,
/// so the result is the same for the same graph. The walk keeps its
/// path on the heap, not the call stack: a chain of `depends_on` as
/// long as the spec has plans is followed to its end without
/// overflowing a thread's stack, and each edge is looked at once.
pub(super) fn topo(n: usize, deps: &[(usize, usize)]) -> Result<Vec<usize>, Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut targets: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(from, to) in deps {
        targets[from].push(to);
    }
    for t in &mut targets {
        t.sort_unstable();
        t.dedup();
    }
    let mut mark = vec![Mark::New; n];
    let mut out = Vec::with_capacity(n);
    // The nodes being visited, each with the index of its next target.
    let mut path: Vec<(usize, usize)> = Vec::new();
    for start in 0..n {
        if mark[start] != Mark::New {
            continue;
        }
        mark[start] = Mark::Active;
        path.push((start, 0));
        while let Some(top) = path.last_mut() {
            let v = top.0;
            let Some(&t) = targets[v].get(top.1) else {
                path.pop();
                mark[v] = Mark::Done;
                out.push(v);
                continue;
            };
            top.1 += 1;
            match mark[t] {
                Mark::Active => {
                    let at = path
                        .iter()
                        .position(|&(p, _)| p == t)
                        .expect("active nodes are on the path");
                    let mut cycle: Vec<usize> = path[at..].iter().map(|&(p, _)| p).collect();
                    cycle.push(t);
                    return Err(cycle);
                }
                Mark::New => {
                    mark[t] = Mark::Active;
                    path.push((t, 0));
                }
                Mark::Done => {}
            }
        }
    }
    Ok(out)
}

/// One piece of the wiring check: a stack's own references and cycles, or
/// a plan's over its stack. Pieces are independent, so they run in
/// parallel.
pub(super) enum Unit<'s> {
    Stack(&'s Stack),
    /// A plan, and whether its stack is free of cycles of its own (a
    /// stack's cycle is reported once, with the stack).
    Plan(&'s Plan, bool),
}

/// Every stack, then every plan, in spec order. Whether a stack has a
/// cycle of its own is worked out once here, not once for each plan.
pub(super) fn units(spec: &Spec) -> Vec<Unit<'_>> {
    // By name, the first stack of a name, as `Spec::stack` finds it.
    let mut acyclic: std::collections::HashMap<&str, bool> = std::collections::HashMap::new();
    for stack in &spec.stacks {
        (acyclic.entry(stack.name.value.as_str()))
            .or_insert_with(|| component_order(stack, None).is_ok());
    }
    let stacks = spec.stacks.iter().map(Unit::Stack);
    let plans = spec.plans.iter().map(|plan| {
        let ok = acyclic.get(plan.stack.value.as_str()) == Some(&true);
        Unit::Plan(plan, ok)
    });
    stacks.chain(plans).collect()
}

pub(super) fn check(c: &mut Check, unit: &Unit) {
    match *unit {
        Unit::Stack(stack) => {
            check_references(c, stack, None);
            report_cycle(c, stack, None);
        }
        Unit::Plan(plan, stack_acyclic) => {
            let Some(stack) = c.spec.stack(&plan.stack.value) else {
                return;
            };
            // A plan that writes no reference adds no edge to its
            // stack's, which have no cycle.
            if check_references(c, stack, Some(plan)) > 0 && stack_acyclic {
                report_cycle(c, stack, Some(plan));
            }
        }
    }
}

/// Each reference written in `plan` (or, without a plan, in `stack`)
/// names a component of the stack and an output its block declares.
/// Returns how many references are written there.
fn check_references(c: &mut Check, stack: &Stack, plan: Option<&Plan>) -> usize {
    let spec = c.spec;
    let own_file = plan.map_or(stack.file, |p| p.file);
    let mut written = 0;
    for (file, _, inputs) in layers(stack, plan) {
        if file != own_file {
            continue;
        }
        for (_, value) in inputs.iter() {
            let mut texts = Vec::new();
            strings(&value.value, &mut texts);
            for r in texts.iter().flat_map(|t| references(t)) {
                written += 1;
                let Some(comp) = stack.components.get(&r.component) else {
                    let known: Vec<&str> = stack.components.keys().collect();
                    let candidates = crate::spec::suggest::candidates(&r.component, known);
                    c.error(
                        file,
                        value,
                        format!(
                            "wiring names unknown component `{}` of stack `{}`",
                            r.component, stack.name.value
                        ),
                    )
                    .candidates(&candidates);
                    continue;
                };
                match r.attribute.as_deref() {
                    Some("outputs") => {}
                    Some("block" | "repo") | None => continue,
                    Some(other) => {
                        c.error(
                            file,
                            value,
                            format!("`components.{}.{other}` does not exist", r.component),
                        )
                        .help("a component offers `outputs.<name>`, `block` and `repo`");
                        continue;
                    }
                }
                let block = match plan {
                    Some(plan) => spec.block_for(plan, &comp.block.value),
                    None => spec.block(&comp.block.value),
                };
                let Some(block) = block else {
                    continue;
                };
                match &r.output {
                    Some(o) if block.meta.outputs.get(o).is_none() => {
                        let candidates =
                            crate::spec::suggest::candidates(o, block.meta.outputs.keys());
                        let listed = block.meta.outputs.listed.iter().any(|l| l.value == *o);
                        let d = c
                            .error(
                                file,
                                value,
                                format!(
                                    "block `{}` (component `{}`) has no output `{o}`",
                                    block.id(),
                                    r.component
                                ),
                            )
                            .candidates(&candidates);
                        if listed {
                            d.help(format!(
                                "`{o}` is only listed in the block's `outputs:`; to wire it, give it an expression (`outputs: {{{o}: \"{{{{ ... }}}}\"}}`)"
                            ));
                        }
                    }
                    None => {
                        c.error(
                            file,
                            value,
                            format!("`components.{}.outputs` must name an output", r.component),
                        );
                    }
                    _ => {}
                }
            }
        }
    }
    written
}

fn report_cycle(c: &mut Check, stack: &Stack, plan: Option<&Plan>) {
    let Err(cycle) = component_order(stack, plan) else {
        return;
    };
    let own_file = plan.map_or(stack.file, |p| p.file);
    let index = |name: &str| stack.components.0.iter().position(|(k, _)| k.value == name);
    let pairs: Vec<(usize, usize)> = cycle
        .windows(2)
        .filter_map(|w| Some((index(&w[0])?, index(&w[1])?)))
        .collect();
    let all = edges(stack, plan);
    let at = all
        .iter()
        .find(|e| e.file == own_file && pairs.contains(&(e.from, e.to)))
        .or_else(|| all.iter().find(|e| pairs.contains(&(e.from, e.to))));
    if let Some(edge) = at {
        let path = cycle.join(" -> ");
        c.error(
            edge.file,
            edge.at,
            format!("dependency cycle between components: {path}"),
        )
        .help("a component cannot read the outputs of a component that reads its own");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_dot_and_bracket_references() {
        let r = references(
            r#"{{ components.db.outputs.url }} and {{ components["my-cache"].outputs['url'] }}"#,
        );
        assert_eq!(
            r[0],
            Reference {
                component: "db".into(),
                attribute: Some("outputs".into()),
                output: Some("url".into())
            }
        );
        assert_eq!(r[1].component, "my-cache");
        assert_eq!(r[1].output.as_deref(), Some("url"));
        assert_eq!(
            references("{{ components.app.repo }}")[0]
                .attribute
                .as_deref(),
            Some("repo")
        );
        assert!(references("no wiring here: mycomponents.x").is_empty());
    }

    #[test]
    fn topo_orders_dependencies_first_and_names_cycles() {
        // 0 reads 1, 1 reads 2.
        assert_eq!(topo(3, &[(0, 1), (1, 2)]), Ok(vec![2, 1, 0]));
        assert_eq!(topo(3, &[(0, 1), (1, 2), (2, 0)]), Err(vec![0, 1, 2, 0]));
        assert_eq!(topo(1, &[(0, 0)]), Err(vec![0, 0]));
        // Targets in order, repeats once; the first cycle found.
        assert_eq!(
            topo(4, &[(0, 2), (0, 1), (0, 2), (1, 3)]),
            Ok(vec![3, 1, 2, 0])
        );
        assert_eq!(
            topo(4, &[(0, 1), (1, 2), (2, 1), (3, 0)]),
            Err(vec![1, 2, 1])
        );
    }

    #[test]
    fn a_chain_as_long_as_a_large_platform_is_followed_without_recursion() {
        // 200,000 plans, each depending on the next: a recursive walk
        // would need about 200,000 stack frames.
        let n = 200_000;
        let chain: Vec<(usize, usize)> = (0..n - 1).map(|i| (i, i + 1)).collect();
        let order = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || topo(n, &chain))
            .expect("a thread")
            .join()
            .expect("no overflow");
        assert_eq!(order, Ok((0..n).rev().collect::<Vec<_>>()));
        let mut closed: Vec<(usize, usize)> = (0..n - 1).map(|i| (i, i + 1)).collect();
        closed.push((n - 1, 0));
        let cycle = topo(n, &closed).expect_err("a cycle");
        assert_eq!((cycle.len(), cycle[0], cycle[n]), (n + 1, 0, 0));
    }

    #[test]
    fn any_graph_gives_an_order_that_puts_targets_first_or_a_closed_cycle_of_its_edges() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let graph =
            (1usize..12).prop_flat_map(|n| (Just(n), prop::collection::vec((0..n, 0..n), 0..24)));
        TestRunner::new(Config::with_cases(512))
            .run(&graph, |(n, deps)| {
                match topo(n, &deps) {
                    Ok(order) => {
                        let mut seen = order.clone();
                        seen.sort_unstable();
                        prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
                        let at = |v: usize| order.iter().position(|&o| o == v);
                        for &(from, to) in &deps {
                            prop_assert!(at(to) < at(from), "{:?} {:?}", order, (from, to));
                        }
                    }
                    Err(cycle) => {
                        prop_assert!(cycle.len() >= 2 && cycle.first() == cycle.last());
                        for pair in cycle.windows(2) {
                            prop_assert!(deps.contains(&(pair[0], pair[1])), "{:?}", cycle);
                        }
                    }
                }
                Ok(())
            })
            .expect("orders and cycles hold");
    }
}
