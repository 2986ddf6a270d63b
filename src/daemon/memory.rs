//! How the daemon gives memory back between reconciles.
//!
//! mimalloc 3 returns freed pages to the OS after a delay (1 s, and ten
//! times that for whole arenas), and only while the program keeps
//! allocating. A daemon allocates in bursts (a reconcile) and then idles,
//! so the pages a reconcile freed stayed resident until the next one: RSS
//! sampled between reconciles moved between 24 and 38 MB with nothing
//! leaking. Collecting once a reconcile has ended keeps RSS at what is
//! live (README, "Daemon benchmark") and leaves the allocator's speed
//! during a reconcile alone; purging at every free instead cost the
//! webhook-to-commit latency about 50 ms.

/// Frees what this thread's heap holds unused and purges every arena's
/// freed pages (those of threads that have ended included) now.
pub fn give_back() {
    // SAFETY: mimalloc's own collection entry point; callable from any
    // thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
