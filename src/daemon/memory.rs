//! How the daemon's allocator gives memory back.
//!
//! mimalloc 3 returns freed pages to the OS after a delay (1 s, and ten
//! times that for whole arenas), and only while the program keeps
//! allocating. A daemon allocates in bursts (a reconcile) and then idles,
//! so the pages a reconcile freed stayed resident until the next one: RSS
//! sampled between reconciles moved between 24 and 38 MB with nothing
//! leaking. Purging at once keeps it at what is live (about 20 MB for the
//! example over 2,000 reconciles, README "Daemon benchmark"), at no
//! measurable cost to a reconcile. A one-shot command keeps the default.

use libmimalloc_sys::{mi_option_set, mi_option_t};

/// `mi_option_purge_delay` in mimalloc 3's `enum mi_option_e`: the Rust
/// bindings name it only for mimalloc 2.
const PURGE_DELAY: mi_option_t = 15;

/// Freed memory goes back to the OS at once. Call before starting threads
/// (mimalloc's options are not thread safe).
pub fn purge_at_once() {
    // SAFETY: sets one integer option; called before other threads start.
    unsafe { mi_option_set(PURGE_DELAY, 0) }
}

#[cfg(test)]
mod tests {
    use libmimalloc_sys::mi_option_get;

    #[test]
    fn the_option_is_the_purge_delay() {
        // Its default is 1000 ms; the options beside it default to 1 (the
        // deprecated eager commit delay) and 0 (numa nodes).
        // SAFETY: reads one integer option.
        let (before, next, delay) = unsafe {
            (
                mi_option_get(super::PURGE_DELAY - 1),
                mi_option_get(super::PURGE_DELAY + 1),
                mi_option_get(super::PURGE_DELAY),
            )
        };
        assert_eq!((before, delay, next), (1, 1000, 0));
    }
}
