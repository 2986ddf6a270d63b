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

/// Turns transparent huge pages off for this process and the processes
/// it starts (the render check): memory is then faulted in 4 KiB pages,
/// and what mimalloc purges goes back to the OS page by page. A 2 MiB
/// page stays resident while any of it is in use: a `diff` of 1,000
/// plans peaks at 62 MB with them against 41 MB without. One-shot
/// commands keep them (a page fault per 2 MiB of heap, not per 4 KiB);
/// a daemon (and the MCP server) stays up, so its RSS is what counts.
pub fn no_huge_pages() {
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::warn!(error = %e, "cannot turn transparent huge pages off; RSS may be higher");
    }
}
