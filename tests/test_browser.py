"""The executed browse notebook, exported to HTML, plays in a real browser (headless Debian Chromium).

Every `<video>` must reach readyState >= 2 (it has decoded a frame) without a media error, and
report the duration of the clip it embeds, as PyAV reads that clip independently. The
notebook comes from the shared quick-profile report run; nothing is executed again here.
Without Chromium (or Playwright) the test skips with a one-line reason, except under
`CI=true`, where that is a failure: CI installs Debian's `chromium` (see .ci/run).
"""
import base64
import io
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import av
import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
DURATION_TOLERANCE_S = 0.1
LOAD_TIMEOUT_MS = 180_000


def _missing(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser check must run)")
    pytest.skip(reason)


def chromium() -> str:
    """Path of Debian's Chromium, or skip (fail under CI) with the one-line reason."""
    path = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if path is None:
        _missing("no Chromium at /usr/bin/chromium: `apt-get install chromium` to run the browser check")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("Playwright for Python is not installed: `pip install -e .[dev]` to run the browser check")
    return path


class VideoSources(HTMLParser):
    """The `src` of every `<video>` of a page, in document order."""

    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "video":
            self.sources.append(dict(attrs).get("src", ""))


def embedded_duration(src: str) -> float:
    """Duration in seconds of the mp4 embedded in a `data:video/mp4;base64,` URI, read with PyAV."""
    header, _, data = src.partition(",")
    assert header == "data:video/mp4;base64", f"player source is not an embedded mp4: {header[:60]!r}"
    with av.open(io.BytesIO(base64.b64decode(data))) as container:
        return container.duration / av.time_base


def export_html(notebook: Path, out: Path) -> Path:
    """The notebook as nbconvert's standalone HTML (lab template)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    out.write_text(body, encoding="utf-8")
    return out


@pytest.mark.browser
def test_every_player_of_the_browse_notebook_plays_in_chromium(quick_report, tmp_path):
    executable = chromium()
    from playwright.sync_api import sync_playwright

    executed = quick_report.root / "runs" / "05_browse.ipynb"
    if not executed.exists():
        pytest.skip("05_browse.ipynb did not run in the quick report (its smoke test says why)")
    page_file = export_html(executed, tmp_path / "05_browse.html")
    parser = VideoSources()
    parser.feed(page_file.read_text(encoding="utf-8"))
    expected = [embedded_duration(src) for src in parser.sources]
    assert expected, "the exported notebook holds no <video> players"

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=executable,
                                                        headless=True, args=FLAGS)
        try:
            page = context.new_page()
            page.route("http*://**", lambda route: route.abort())  # offline: no CDN, no network
            page.goto(page_file.as_uri(), wait_until="domcontentloaded")
            page.wait_for_function("() => Array.from(document.querySelectorAll('video'))"
                                   ".every(v => v.readyState >= 2 || v.error)", timeout=LOAD_TIMEOUT_MS)
            states = page.evaluate("() => Array.from(document.querySelectorAll('video')).map(v => ({"
                                   "ready: v.readyState, error: v.error && `${v.error.code} ${v.error.message}`,"
                                   "duration: v.duration, muted: v.muted, controls: v.controls, preload: v.preload}))")
        finally:
            context.close()

    assert len(states) == len(expected), f"{len(states)} players in the browser, {len(expected)} in the HTML"
    problems = [f"player {i}: readyState {s['ready']}, error {s['error']}, duration {s['duration']} (clip {want:.3f} s)"
                for i, (s, want) in enumerate(zip(states, expected))
                if s["ready"] < 2 or s["error"] or abs(s["duration"] - want) > DURATION_TOLERANCE_S]
    assert not problems, f"{len(problems)} of {len(states)} players fail:\n" + "\n".join(problems[:20])
    assert all(s["muted"] and s["controls"] and s["preload"] == "metadata" for s in states)
