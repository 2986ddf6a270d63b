//! Memory budgets for work on untrusted input: the bytes one thread may
//! hold while it evaluates a template.
//!
//! A template can build values far larger than anything it outputs
//! (`{% set a = 'x' * 50000000 %}{% set b = a ~ a ~ a %}…`): fuel counts
//! instructions, not bytes, and the engine has no hook between them. So
//! the accounting sits where every byte passes, in the global allocator:
//! [`Metered`] wraps the real allocator and charges each allocation made
//! on a thread inside [`within`] to that thread's budget (and refunds what
//! it frees). An allocation cannot fail gracefully in Rust, so a thread
//! that goes over its budget ends the process: it writes one located error
//! line (what was being evaluated, and the limit) to stderr and exits
//! with status 1, before anything was written anywhere — rendering comes
//! before every write. The daemon therefore renders a spec in a child
//! process first, so a hostile spec ends that child, not the daemon.
//!
//! Without [`Metered`] as the global allocator (library users, unit
//! tests) budgets are not enforced.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

/// The global allocator `A`, metered per thread inside [`within`].
pub struct Metered<A>(pub A);

/// A thread's budget: what it evaluates, where, and the bytes it holds
/// of its limit. Cells of their own, so the allocator's path reads and
/// writes a word or two, not the whole scope.
struct Meter {
    on: Cell<bool>,
    limit: Cell<usize>,
    used: Cell<usize>,
    /// What is being evaluated: a `&str` that outlives the scope.
    what: Cell<(*const u8, usize)>,
    /// Where: the file (or `file:line:col`) it comes from, likewise.
    at: Cell<(*const u8, usize)>,
}

/// A scope as [`within`] installs it and puts back.
#[derive(Clone, Copy)]
struct Scope {
    on: bool,
    limit: usize,
    used: usize,
    what: (*const u8, usize),
    at: (*const u8, usize),
}

impl Meter {
    fn replace(&self, scope: Scope) -> Scope {
        Scope {
            on: self.on.replace(scope.on),
            limit: self.limit.replace(scope.limit),
            used: self.used.replace(scope.used),
            what: self.what.replace(scope.what),
            at: self.at.replace(scope.at),
        }
    }
}

thread_local! {
    // Constant-initialised and without a destructor, so the allocator may
    // touch it at any point of a thread's life.
    static METER: Meter = const {
        Meter {
            on: Cell::new(false),
            limit: Cell::new(0),
            used: Cell::new(0),
            what: Cell::new((std::ptr::null(), 0)),
            at: Cell::new((std::ptr::null(), 0)),
        }
    };
}

/// Runs `f` with the bytes this thread allocates (less what it frees)
/// limited to `limit`; `what` names the work and `at` its source file in
/// the error. Nested calls replace the outer budget for their duration.
pub fn within<R>(limit: usize, what: &str, at: &str, f: impl FnOnce() -> R) -> R {
    let outer = METER.with(|m| {
        m.replace(Scope {
            on: true,
            limit,
            used: 0,
            what: (what.as_ptr(), what.len()),
            at: (at.as_ptr(), at.len()),
        })
    });
    struct Restore(Scope);
    impl Drop for Restore {
        fn drop(&mut self) {
            METER.with(|m| m.replace(self.0));
        }
    }
    let _restore = Restore(outer);
    f()
}

/// Bytes charged to this thread's current budget (0 outside one).
pub fn used() -> usize {
    METER.with(|m| if m.on.get() { m.used.get() } else { 0 })
}

fn charge(bytes: usize) {
    let _ = METER.try_with(|m| {
        if m.on.get() {
            let used = m.used.get().saturating_add(bytes);
            m.used.set(used);
            if used > m.limit.get() {
                m.on.set(false);
                exceeded(m);
            }
        }
    });
}

fn refund(bytes: usize) {
    let _ = METER.try_with(|m| {
        if m.on.get() {
            m.used.set(m.used.get().saturating_sub(bytes));
        }
    });
}

/// Writes the error and ends the process; allocates nothing.
fn exceeded(meter: &Meter) -> ! {
    let mut line = Line::default();
    let (what, at) = (meter.what.get(), meter.at.get());
    // SAFETY: `within` keeps both `&str` borrowed for as long as its
    // scope is installed, and the scope is the one installed now.
    let (what, at) = unsafe {
        (
            std::slice::from_raw_parts(what.0, what.1),
            std::slice::from_raw_parts(at.0, at.1),
        )
    };
    message(&mut line, what, at, meter.limit.get());
    let bytes = line.bytes();
    // SAFETY: writing a valid buffer to stderr, then leaving at once:
    // nothing may allocate any more on this path.
    unsafe {
        libc::write(2, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(1)
    }
}

/// The error, in the shape of every other diagnostic druppie prints.
fn message(line: &mut Line, what: &[u8], at: &[u8], limit: usize) {
    const MIB: usize = 1024 * 1024;
    line.push(b"error: ");
    line.push(what);
    line.push(b" needs more than ");
    if limit >= MIB {
        line.number(limit / MIB);
        line.push(b" MiB");
    } else {
        line.number(limit);
        line.push(b" bytes");
    }
    line.push(b" of memory (`[render] max_template_memory`); nothing was written\n --> ");
    line.push(at);
    line.push(b"\n  = help: the template builds very large strings or lists; if that is intended, raise `max_template_memory` in the `[render]` section of druppie.toml\n");
}

/// A line assembled on the stack.
struct Line {
    buf: [u8; 2048],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Line {
            buf: [0; 2048],
            len: 0,
        }
    }
}

impl Line {
    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn number(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

// SAFETY: every call is passed on to `A` unchanged; the metering only
// reads and writes this thread's `METER` and never allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Metered<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        charge(layout.size());
        // SAFETY: the caller's contract is `A`'s.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        charge(layout.size());
        // SAFETY: the caller's contract is `A`'s.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        refund(layout.size());
        // SAFETY: the caller's contract is `A`'s.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            charge(new_size - layout.size());
        } else {
            refund(layout.size() - new_size);
        }
        // SAFETY: the caller's contract is `A`'s.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_text_assemble_without_allocating() {
        let mut line = Line::default();
        line.push(b"x ");
        line.number(0);
        line.push(b" ");
        line.number(4096);
        assert_eq!(line.bytes(), b"x 0 4096");
    }

    #[test]
    fn the_error_names_the_work_its_file_and_the_limit() {
        let mut line = Line::default();
        message(
            &mut line,
            b"the template `t.j2` for plan `p`",
            b"templates/b/infra/t.j2",
            64 << 20,
        );
        let text = String::from_utf8_lossy(line.bytes()).into_owned();
        assert!(text.starts_with("error: the template `t.j2` for plan `p` needs more than 64 MiB of memory (`[render] max_template_memory`); nothing was written\n --> templates/b/infra/t.j2\n"), "{text}");
        let mut line = Line::default();
        message(&mut line, b"x", b"y", 1000);
        assert!(String::from_utf8_lossy(line.bytes()).contains("more than 1000 bytes"));
    }

    #[test]
    fn allocations_are_charged_and_frees_refunded_inside_a_scope_only() {
        charge(100);
        assert_eq!(used(), 0, "no scope, no charge");
        within(1 << 20, "test", "here", || {
            charge(300);
            refund(100);
            assert_eq!(used(), 200);
            refund(1000);
            assert_eq!(used(), 0, "frees of older memory do not go below zero");
        });
    }

    #[test]
    fn scopes_nest_and_restore() {
        assert_eq!(used(), 0);
        within(1 << 30, "outer", "here", || {
            within(1 << 20, "inner", "here", || assert_eq!(used(), 0));
            assert!(METER.with(|m| m.on.get() && m.limit.get() == 1 << 30));
        });
        assert!(METER.with(|m| !m.on.get()));
    }
}
