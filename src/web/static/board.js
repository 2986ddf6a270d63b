// druppie's board: keeps the live parts of a page ([data-live]) current.
// When the event stream says a reconcile started, finished or wrote
// something, the page is fetched again and its live parts are swapped in;
// filters, focus and open diffs stay as they are.
"use strict";
(function () {
  const live = () => Array.from(document.querySelectorAll("[data-live][id]"));
  if (live().length === 0 || !window.EventSource) {
    return;
  }
  const status = document.getElementById("live-status");
  let running = false;
  let again = false;

  async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        const answer = await fetch(window.location.href, {
          headers: { Accept: "text/html" },
          credentials: "same-origin",
          cache: "no-store",
        });
        if (!answer.ok) {
          break;
        }
        const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
        for (const part of live()) {
          const next = fresh.getElementById(part.id);
          if (!next) {
            continue;
          }
          const open = new Set(
            Array.from(part.querySelectorAll("details[open][id]")).map((d) => d.id)
          );
          for (const d of next.querySelectorAll("details[id]")) {
            d.open = open.has(d.id);
          }
          part.replaceWith(document.importNode(next, true));
        }
        if (status) {
          status.textContent = "Updated at " + new Date().toLocaleTimeString();
        }
      } while (again);
    } catch (e) {
      // The next event tries again.
    } finally {
      running = false;
    }
  }

  const stream = new EventSource("/api/v1/events");
  for (const name of [
    "reconcile-started",
    "reconcile-finished",
    "change-applied",
    "pr-opened",
    "approval-recorded",
    "verification",
    "promotion",
    "promotion-recorded",
    "verification-recorded",
    // Events were missed (a restart, a slow reader): the page is reread.
    "resync",
  ]) {
    stream.addEventListener(name, refresh);
  }
  document.documentElement.dataset.live = "connected";
})();
