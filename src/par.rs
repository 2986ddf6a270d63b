//! Work spread over every core: scoped threads that take small runs of
//! items as they go (a thread slowed down by anything else on the machine
//! does less of the work), results in input order. Threads start per call
//! (tens of microseconds), so this is for stages over many items, not for
//! small loops.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Maps `f` over `items` on every core. Each thread first makes its own
/// state with `init` (for values that cannot be shared between threads)
/// and runs with a `stack`-byte stack when given.
///
/// # Panics
/// When a thread cannot be started, or `f` panics (the panic is resumed).
pub fn map_init<T, S, R>(
    items: &[T],
    stack: Option<usize>,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &T) -> R + Sync,
) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if items.len() < 2 || threads == 1 && stack.is_none() {
        let mut state = init();
        return items.iter().map(|item| f(&mut state, item)).collect();
    }
    // Runs small enough to even out, large enough to keep the counter cold.
    let run = (items.len() / (threads * 16)).clamp(1, 64);
    let next = AtomicUsize::new(0);
    let (init, f, next) = (&init, &f, &next);
    let done: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(items.len()))
            .map(|_| {
                let mut builder = std::thread::Builder::new().name("druppie-worker".into());
                if let Some(bytes) = stack {
                    builder = builder.stack_size(bytes);
                }
                builder
                    .spawn_scoped(scope, move || {
                        let mut state = init();
                        let mut out = Vec::new();
                        loop {
                            let start = next.fetch_add(run, Ordering::Relaxed);
                            if start >= items.len() {
                                break out;
                            }
                            let end = (start + run).min(items.len());
                            for (i, item) in items[start..end].iter().enumerate() {
                                out.push((start + i, f(&mut state, item)));
                            }
                        }
                    })
                    .expect("start a worker thread")
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    for (i, r) in done.into_iter().flatten() {
        slots[i] = Some(r);
    }
    slots
        .into_iter()
        .map(|r| r.expect("every item is mapped once"))
        .collect()
}

/// Maps `f` over `items` on every core.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    map_init(items, None, || (), |(), item| f(item))
}

#[cfg(test)]
mod tests {
    #[test]
    fn order_is_kept_and_state_is_per_thread() {
        let items: Vec<u32> = (0..1000).collect();
        assert_eq!(
            super::map(&items, |x| x * 2),
            items.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
        let counted = super::map_init(
            &items,
            Some(1 << 20),
            || 0u32,
            |n, _| {
                *n += 1;
                *n
            },
        );
        assert_eq!(counted.len(), 1000);
        assert_eq!(counted[0], 1);
        assert!(super::map(&[] as &[u32], |x| *x).is_empty());
    }
}
