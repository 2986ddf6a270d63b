"""Drives druppie's board in Debian's Chromium with Playwright.

Usage: board-browser.py BASE_URL ARTEFACTS_DIR AXE_JS

Walks the board, a plan page, the catalog, a block page and the audit
page; saves a screenshot of each in ARTEFACTS_DIR; runs axe-core (WCAG
2.1 A and AA rules) on each. In the middle it prints
{"need": "change"} and waits for one JSON line on stdin,
{"commit": "<spec commit>"}: the test has pushed a change and sent the
webhook, and the board must show that commit live in dev without a
reload. The last line printed is {"done": {...what was seen...}}.
"""

import json
import os
import sys

from playwright.sync_api import sync_playwright

BASE, ARTEFACTS, AXE = sys.argv[1], sys.argv[2], sys.argv[3]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = {
    "board": "/",
    "plan": "/plans/permits",
    "catalog": "/catalog?q=database",
    "block": "/catalog/postgresql",
    "audit": "/audit",
}


def say(obj):
    print(json.dumps(obj), flush=True)


def hostile(page):
    """What a script from the spec could have done: nothing, if escaped."""
    return page.evaluate(
        """() => ({
            pwned: window.pwned === 1,
            shown: document.body.innerText.includes('<script>window.pwned=1</script>'),
            scripts: Array.from(document.scripts).map(s => s.getAttribute('src')),
        })"""
    )


def board_cells(page):
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('tr[data-plan]')).map(tr => ({
            plan: tr.dataset.plan,
            intent: (tr.querySelector('.intent') || {}).textContent || null,
            cells: Array.from(tr.querySelectorAll('td[data-env]')).map(td => ({
                env: td.dataset.env,
                state: td.dataset.state,
                freight: (td.querySelector('.freight code') || {}).textContent || null,
                pull: (td.querySelector('.pull') || {}).textContent || null,
            })),
        }))"""
    )


def main():
    seen = {"hostile": {}, "screenshots": [], "axe": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        # The board, then a change arriving while it is open.
        page.goto(BASE + "/")
        page.wait_for_function("document.documentElement.dataset.live === 'connected'")
        seen["board"] = board_cells(page)
        seen["hostile"]["board"] = hostile(page)
        page.screenshot(path=os.path.join(ARTEFACTS, "board.png"), full_page=True)
        seen["screenshots"].append("board.png")
        page.evaluate(
            """() => {
                window.__samePage = true;
                window.__finished = [];
                const s = new EventSource('/api/v1/events');
                s.addEventListener('reconcile-finished', () => window.__finished.push(Date.now()));
            }"""
        )
        say({"need": "change"})
        commit = json.loads(sys.stdin.readline())["commit"][:12]
        page.wait_for_function(
            """(commit) => {
                const td = document.querySelector('tr[data-plan="permits"] td[data-env="dev"] .freight code');
                return td && td.textContent === commit;
            }""",
            arg=commit,
            timeout=30000,
        )
        seen["live"] = page.evaluate(
            """() => ({
                samePage: window.__samePage === true,
                sinceFinished: window.__finished.length
                    ? Date.now() - window.__finished[window.__finished.length - 1] : null,
                finished: window.__finished.length,
                status: document.getElementById('live-status').textContent,
            })"""
        )
        seen["board_after"] = board_cells(page)
        page.screenshot(path=os.path.join(ARTEFACTS, "board-live.png"), full_page=True)
        seen["screenshots"].append("board-live.png")

        # A plan: its cards and its timeline.
        page.goto(BASE + PAGES["plan"])
        seen["plan"] = page.evaluate(
            """() => ({
                timeline: Array.from(document.querySelectorAll('tr[data-event]')).map(tr => ({
                    event_commit: tr.dataset.event,
                    kind: tr.dataset.kind,
                    time: tr.querySelector('time').getAttribute('datetime'),
                    signature: tr.lastElementChild.textContent.trim(),
                })),
                cards: Array.from(document.querySelectorAll('article.card')).map(a => ({
                    branch: a.dataset.proposal,
                    title: a.querySelector('h3').textContent,
                    facts: Object.fromEntries(Array.from(a.querySelectorAll('dl.facts dt')).map(
                        dt => [dt.textContent, dt.nextElementSibling.textContent])),
                    files: Array.from(a.querySelectorAll('table.diffstat tbody tr')).map(
                        tr => tr.querySelector('th').textContent),
                    diffs: a.querySelectorAll('details.diff').length,
                })),
                components: Array.from(document.querySelectorAll('#components-h ~ table tbody tr')).map(
                    tr => tr.querySelector('th').textContent),
            })"""
        )
        details = page.query_selector("article.card details.diff")
        if details:
            details.click()
        seen["hostile"]["plan"] = hostile(page)
        page.screenshot(path=os.path.join(ARTEFACTS, "plan.png"), full_page=True)
        seen["screenshots"].append("plan.png")

        # The catalog, searched the way a person does: the form.
        page.goto(BASE + "/catalog")
        page.fill("#q", "database")
        page.click("form[role=search] button")
        page.wait_for_url("**/catalog?q=database")
        seen["catalog"] = page.evaluate(
            "() => Array.from(document.querySelectorAll('article[data-block]')).map(a => a.dataset.block)"
        )
        seen["hostile"]["catalog"] = hostile(page)
        page.screenshot(path=os.path.join(ARTEFACTS, "catalog.png"), full_page=True)
        seen["screenshots"].append("catalog.png")

        page.goto(BASE + PAGES["block"])
        seen["block"] = page.evaluate(
            """() => ({
                placements: Array.from(document.querySelectorAll('#where-h ~ table tbody tr[data-plan]')).map(
                    tr => tr.dataset.plan + '/' + tr.dataset.env),
                docs: document.querySelector('section.docs').textContent.length,
            })"""
        )
        seen["hostile"]["block"] = hostile(page)
        page.screenshot(path=os.path.join(ARTEFACTS, "block.png"), full_page=True)
        seen["screenshots"].append("block.png")

        page.goto(BASE + "/audit")
        page.select_option("#plan", "permits")
        page.click("form.filters button")
        page.wait_for_url("**/audit?plan=permits**")
        seen["audit"] = page.evaluate(
            "() => Array.from(document.querySelectorAll('tr[data-event]')).map(tr => tr.dataset.event)"
        )
        seen["hostile"]["audit"] = hostile(page)
        page.screenshot(path=os.path.join(ARTEFACTS, "audit.png"), full_page=True)
        seen["screenshots"].append("audit.png")
        seen["page_errors"] = errors
        context.close()

        # Accessibility: axe-core injected past the page's policy (only
        # here: the pages above ran under it).
        axe_context = browser.new_context(bypass_csp=True, viewport={"width": 1400, "height": 900})
        axe_page = axe_context.new_page()
        for name, path in PAGES.items():
            axe_page.goto(BASE + path)
            axe_page.add_script_tag(path=AXE)
            result = axe_page.evaluate(
                """() => axe.run(document, {runOnly: {type: 'tag',
                    values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"""
            )
            seen["axe"][name] = {
                "passes": len(result["passes"]),
                "violations": [
                    {
                        "id": v["id"],
                        "impact": v["impact"],
                        "nodes": [n["target"] for n in v["nodes"]][:5],
                    }
                    for v in result["violations"]
                ],
            }
        axe_context.close()
        browser.close()
    say({"done": seen})


if __name__ == "__main__":
    main()
