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
                            let Some((start, end)) = take_run(next, items.len(), threads) else {
                                break out;
                            };
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

/// Takes the next run of items, `start..end`, or `None` when all are
/// taken. Runs shrink as the items left do (a share of what is left, at
/// most 64): long runs keep the counter cold while there is much to do,
/// and the last ones are single items, so the threads finish together
/// rather than one waiting for another's long last run.
fn take_run(next: &AtomicUsize, len: usize, threads: usize) -> Option<(usize, usize)> {
    let mut start = next.load(Ordering::Relaxed);
    loop {
        if start >= len {
            return None;
        }
        let run = ((len - start) / (threads * 4)).clamp(1, 64);
        match next.compare_exchange_weak(start, start + run, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some((start, start + run)),
            Err(now) => start = now,
        }
    }
}

/// Maps `f` over `items` on every core.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    map_init(items, None, || (), |(), item| f(item))
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_cover_every_item_once_and_shrink_to_single_items() {
        use std::sync::atomic::AtomicUsize;
        for (len, threads) in [(0, 2), (1, 2), (7, 2), (1000, 2), (10_000, 8), (3, 16)] {
            let next = AtomicUsize::new(0);
            let mut runs = Vec::new();
            while let Some(run) = super::take_run(&next, len, threads) {
                runs.push(run);
            }
            let mut at = 0;
            for &(start, end) in &runs {
                assert_eq!(start, at, "{len} items, {threads} threads: {runs:?}");
                assert!(end > start && end - start <= 64);
                at = end;
            }
            assert_eq!(at, len);
            if len > 0 {
                let last = runs[runs.len() - 1];
                assert_eq!(last.1 - last.0, 1, "the last run is one item");
            }
        }
    }

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
