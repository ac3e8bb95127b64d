#!/usr/bin/env python3
"""Opens an HTML report in headless Chromium over the DevTools protocol
(on a pipe: --remote-debugging-pipe, fds 3 and 4, NUL-terminated JSON) and
prints one JSON object: what the page's DOM shows, every console error,
uncaught exception and log error (CSP violations land there), and every
network request. Saves a screenshot.

    html_report.py CHROMIUM PAGE.html SCREENSHOT.png [--dark] [--height N]

Used by tests/html_report.rs; the standard library only.
"""
import base64
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time

# What the test compares, read from the DOM after the script ran; then one
# click on the largest directory cell, to see the zoom and the breadcrumb.
FACTS = r"""
(() => {
  const q = (s) => Array.from(document.querySelectorAll(s));
  const facts = {
    figures: q('tr.figure').map(r => ({
      id: r.getAttribute('data-figure'),
      files: Number(r.getAttribute('data-files')),
      bytes: Number(r.getAttribute('data-bytes')),
      text: r.textContent,
    })),
    cells: q('.treemap .cell').map(c => c.getAttribute('data-path')),
    focusable_cells: q('.treemap .cell[tabindex="0"]').length,
    labels: q('.treemap .cell > .label').map(l => l.textContent),
    info: q('.info').map(i => i.textContent),
    top_unused: q('[data-list="top-unused"] tbody tr').map(r => r.textContent),
    findings: q('tr.finding').map(r => r.getAttribute('data-severity')),
    reads: q('.dockerfile .reads').map(r => ({
      line: Number(r.getAttribute('data-line')),
      files: Number(r.getAttribute('data-files')),
      bytes: Number(r.getAttribute('data-bytes')),
    })),
    dockerfile: q('.dockerfile code').map(c => c.textContent),
    copy_buttons_shown: q('button.copy').filter(b => !b.hidden).length,
    scripts: q('script').length,
    imgs: q('img, svg, iframe, object, embed').length,
    pwned: window.__pwned === undefined ? null : String(window.__pwned),
    body_text: document.body.innerText,
  };
  const dirs = q('.treemap > .cell.dir');
  if (dirs.length) {
    dirs[0].click();
    facts.zoomed_crumbs = q('.crumbs')[0].textContent;
    facts.zoomed_cells = q('.treemap')[0].querySelectorAll('.cell').length;
  }
  return JSON.stringify(facts);
})()
"""


class Browser:
    def __init__(self, chromium):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        self.profile = tempfile.mkdtemp(prefix="html-report-chromium.")

        def fds():
            # Above 10 first, so that neither dup2 overwrites the other end.
            a = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [chromium, "--headless", "--remote-debugging-pipe", "--no-sandbox",
             "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             "--user-data-dir=" + self.profile, "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds,
            stdout=subprocess.DEVNULL, stderr=open(os.environ.get("HTML_REPORT_CHROMIUM_LOG", os.devnull), "w"))
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        want = self.next_id
        while True:
            m = self.read()
            if m.get("id") == want:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def read(self):
        deadline = time.time() + 60
        while b"\0" not in self.buf:
            if time.time() > deadline:
                raise TimeoutError("no answer from chromium in 60 s")
            chunk = os.read(self.from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def wait_event(self, method):
        for e in self.events:
            if e.get("method") == method:
                return e
        while True:
            m = self.read()
            self.events.append(m)
            if m.get("method") == method:
                return m

    def close(self):
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        subprocess.run(["rm", "-rf", self.profile])


def main():
    args = sys.argv[1:]
    dark = "--dark" in args
    height = 1000
    if "--height" in args:
        height = int(args[args.index("--height") + 1])
        del args[args.index("--height"):args.index("--height") + 2]
    args = [a for a in args if a != "--dark"]
    chromium, page, shot = args[0], os.path.abspath(args[1]), args[2]
    url = "file://" + page
    b = Browser(chromium)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            b.send(domain + ".enable", session=s)
        b.send("Emulation.setDeviceMetricsOverride",
               {"width": 1200, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=s)
        b.send("Emulation.setEmulatedMedia",
               {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]},
               session=s)
        b.send("Page.navigate", {"url": url}, session=s)
        b.wait_event("Page.loadEventFired")
        shot_data = b.send("Page.captureScreenshot", {"format": "png"}, session=s)["data"]
        with open(shot, "wb") as f:
            f.write(base64.b64decode(shot_data))
        res = b.send("Runtime.evaluate", {"expression": FACTS, "returnByValue": True}, session=s)
        if "exceptionDetails" in res:
            raise RuntimeError("evaluating the checks: " + json.dumps(res["exceptionDetails"]))
        facts = json.loads(res["result"]["value"])
        # Let late events (a request the click caused) arrive.
        b.send("Runtime.evaluate", {"expression": "new Promise(r => setTimeout(r, 200))",
                                    "awaitPromise": True}, session=s)
    finally:
        b.close()
    errors, requests = [], []
    for e in b.events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
            errors.append("console." + p["type"] + ": " + json.dumps(p.get("args")))
        elif m == "Runtime.exceptionThrown":
            errors.append("exception: " + json.dumps(p.get("exceptionDetails")))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
            errors.append("log: " + p["entry"].get("text", ""))
        elif m == "Network.requestWillBeSent":
            requests.append(p.get("request", {}).get("url", ""))
    print(json.dumps({"url": url, "errors": errors, "requests": requests, "dom": facts}))


if __name__ == "__main__":
    main()
