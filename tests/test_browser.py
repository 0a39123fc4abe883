"""The report in a real browser (headless Debian Chromium), offline: the executed browse
notebook exported to HTML and opened in JupyterLab itself, and the standalone UMAP page.

Every `<video>` must reach readyState >= 2 (it has decoded a frame) without a media error, and
report the duration of the clip it embeds, as PyAV reads that clip independently. Pages come
from the shared quick-profile report run; nothing is executed again here. Without Chromium (or
Playwright) the tests skip with a one-line reason, except under `CI=true`, where that is a
failure: CI installs Debian's `chromium` (see .ci/run). Screenshots go to a temporary folder,
or to `$MVNB_SCREENSHOTS` (`make screenshots` sets it to figures/).
"""

import base64
import contextlib
import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import av
import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DURATION_TOLERANCE_S = 0.1
LOAD_TIMEOUT_MS = 180_000
LOCAL = re.compile(r"^(file:|data:|blob:|about:|https?://127\.0\.0\.1[:/])")
ALL_PLAYERS_SETTLED = (
    "() => Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 2 || v.error)"
)
PLAYER_STATES = (
    "() => Array.from(document.querySelectorAll('video')).map(v => ({ready: v.readyState,"
    " error: v.error && `${v.error.code} ${v.error.message}`, duration: v.duration, muted: v.muted,"
    " controls: v.controls, preload: v.preload}))"
)


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


@contextlib.contextmanager
def offline_page(tmp_path: Path):
    """A Chromium page that may load only local files and loopback URLs; every other request
    is aborted and listed in the page's `blocked` attribute."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            headless=True,
            args=FLAGS,
            viewport=dict(width=1400, height=1000),
        )
        try:
            page = context.new_page()
            page.blocked = []

            def gate(route):
                if LOCAL.match(route.request.url):
                    route.continue_()
                else:
                    page.blocked.append(route.request.url)
                    route.abort()

            page.route("**/*", gate)
            yield page
        finally:
            context.close()


def screenshot(page, tmp_path: Path, name: str) -> Path:
    """Save a screenshot of `page` as `name` in `$MVNB_SCREENSHOTS` (else `tmp_path`)."""
    folder = Path(os.environ.get("MVNB_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name))
    return folder / name


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


def notebook_players(notebook: Path) -> list[float]:
    """Durations of the clips embedded by the `<video>` players in a notebook's HTML outputs."""
    parser = VideoSources()
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/html")
            if text:
                parser.feed("".join(text))
    return [embedded_duration(src) for src in parser.sources]


def export_html(notebook: Path, out: Path) -> Path:
    """The notebook as nbconvert's standalone HTML (lab template)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    out.write_text(body, encoding="utf-8")
    return out


def check_players(states: list[dict], expected: list[float]) -> None:
    """Every player decoded a frame without error, with the duration of its clip, muted, with
    controls and metadata preload."""
    assert len(states) == len(expected), (
        f"{len(states)} players in the browser, {len(expected)} in the notebook"
    )
    problems = [
        f"player {i}: readyState {s['ready']}, error {s['error']}, duration {s['duration']} (clip "
        f"{want:.3f} s)"
        for i, (s, want) in enumerate(zip(states, expected, strict=True))
        if s["ready"] < 2 or s["error"] or abs(s["duration"] - want) > DURATION_TOLERANCE_S
    ]
    assert not problems, f"{len(problems)} of {len(states)} players fail:\n" + "\n".join(problems[:20])
    assert all(s["muted"] and s["controls"] and s["preload"] == "metadata" for s in states)


def executed_browse(quick_report) -> Path:
    executed = quick_report.root / "runs" / "05_browse.ipynb"
    if not executed.exists():
        pytest.skip("05_browse.ipynb did not run in the quick report (its smoke test says why)")
    return executed


@pytest.mark.browser
def test_every_player_of_the_exported_browse_notebook_plays(quick_report, tmp_path):
    executed = executed_browse(quick_report)
    expected = notebook_players(executed)
    assert expected, "the executed notebook holds no <video> players"
    page_file = export_html(executed, tmp_path / "05_browse.html")
    with offline_page(tmp_path) as page:
        page.goto(page_file.as_uri(), wait_until="domcontentloaded")
        page.wait_for_function(ALL_PLAYERS_SETTLED, timeout=LOAD_TIMEOUT_MS)
        states = page.evaluate(PLAYER_STATES)
    check_players(states, expected)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def jupyterlab(root: Path, tmp_path: Path):
    """A JupyterLab server on loopback serving `root`, with a random token; yields its base URL
    and the token. Its settings live in `tmp_path`: every cell rendered at once (no windowing),
    no news or update checks. The app is exposed as `window.jupyterapp`, so a test can run its
    commands as the menus do."""
    for plugin, values in (
        ("notebook-extension/tracker", {"windowingMode": "none"}),
        ("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False}),
    ):
        path = tmp_path / "lab-settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    token, port = secrets.token_hex(16), free_port()
    env = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
    )
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError as err:
                if server.poll() is not None or time.monotonic() > deadline:
                    log = (tmp_path / "jupyterlab.log").read_text()[-3000:]
                    raise AssertionError(f"JupyterLab did not start:\n{log}") from err
                time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


@pytest.mark.browser
def test_jupyterlab_opens_the_executed_browse_notebook_and_its_players_load(quick_report, tmp_path):
    executed = executed_browse(quick_report)
    expected = notebook_players(executed)
    with jupyterlab(executed.parent, tmp_path) as (base, token), offline_page(tmp_path) as page:
        page.goto(f"{base}/lab/tree/{executed.name}?token={token}", wait_until="domcontentloaded")
        page.wait_for_selector(".jp-Notebook .jp-OutputArea-output", timeout=LOAD_TIMEOUT_MS)
        page.wait_for_function(
            f"() => document.querySelectorAll('.jp-OutputArea video').length >= {len(expected)}",
            timeout=LOAD_TIMEOUT_MS,
        )
        page.wait_for_function(ALL_PLAYERS_SETTLED, timeout=LOAD_TIMEOUT_MS)
        states = page.evaluate(PLAYER_STATES)
        page.locator(".jp-OutputArea video").first.scroll_into_view_if_needed()
        screenshot(page, tmp_path, "jupyterlab_browse.png")
        assert not page.blocked, f"JupyterLab asked the network for {page.blocked[:5]}"
    check_players(states, expected)


RENDERED_POINTS = "document.querySelectorAll('.scatterlayer .trace .points path.point').length"


@pytest.mark.browser
def test_umap_page_renders_its_points_offline_and_the_dropdown_switches_maps(quick_report, tmp_path):
    page_file = quick_report.root / "figures" / "umap.html"
    assert page_file.exists(), quick_report.log[-3000:]
    assert (page_file.parent / "plotly.min.js").exists(), "umap.html needs plotly.min.js beside it"
    assert "cdn.plot.ly" not in page_file.read_text(encoding="utf-8")
    with offline_page(tmp_path) as page:
        page.goto(page_file.as_uri(), wait_until="load")
        page.wait_for_function(f"() => {RENDERED_POINTS} > 0", timeout=LOAD_TIMEOUT_MS)
        layers = page.evaluate(
            "() => { const gd = document.querySelector('.js-plotly-plot');"
            " return gd.layout.updatemenus[0].buttons.map(b => b.label); }"
        )
        visible = "() => document.querySelector('.js-plotly-plot').data.filter(t => t.visible === true)"
        first = page.evaluate(f"() => ({visible})().map(t => [t.meta, t.customdata.length])")
        assert {meta for meta, _ in first} == {0}
        assert page.evaluate(f"() => {RENDERED_POINTS}") == sum(n for _, n in first)
        screenshot(page, tmp_path, "umap_page.png")

        target = layers.index("CL_agg (corrected) · segments")  # within the open list, no scrolling needed
        page.click(".updatemenu-header-group")
        page.locator(".updatemenu-item-text", has_text=layers[target]).first.click()
        page.wait_for_function(f"() => ({visible})().every(t => t.meta === {target})", timeout=30_000)
        last = page.evaluate(f"() => ({visible})().map(t => [t.meta, t.customdata.length])")
        assert last and page.evaluate(f"() => {RENDERED_POINTS}") == sum(n for _, n in last)
        assert layers[target] in page.evaluate(
            "() => document.querySelector('.js-plotly-plot').layout.title.text"
        )
        assert not page.blocked, f"the page asked the network for {page.blocked[:5]}"


KERNEL_IDLE = ".jp-Notebook-ExecutionIndicator[data-status='idle']"


def accept_kernel_dialog(page) -> None:
    """Answer JupyterLab's "Select Kernel" dialog, if it comes, with the proposed kernel, as a user would."""
    from playwright.sync_api import TimeoutError as NoDialog

    try:
        page.wait_for_selector(".jp-Dialog .jp-mod-accept", timeout=10_000)
    except NoDialog:  # the kernel started by itself
        return
    page.click(".jp-Dialog .jp-mod-accept")


@pytest.mark.browser
def test_clicking_a_point_of_the_live_map_in_jupyterlab_plays_it_with_its_neighbours(quick_report, tmp_path):
    """The user's path through 05b: open it in JupyterLab, run all cells in a live kernel, click a
    point of the map; its clip plays, with sound, and its neighbours appear as players."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    executed = quick_report.root / "runs" / "05b_embedding_map.ipynb"
    if not executed.exists():
        pytest.skip("05b_embedding_map.ipynb did not run in the quick report (its smoke test says why)")
    with jupyterlab(executed.parent, tmp_path) as (base, token), offline_page(tmp_path) as page:
        page.goto(f"{base}/lab/tree/{executed.name}?token={token}", wait_until="domcontentloaded")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=LOAD_TIMEOUT_MS)
        accept_kernel_dialog(page)
        page.wait_for_selector(KERNEL_IDLE, timeout=LOAD_TIMEOUT_MS)
        page.evaluate(
            "() => { const run = window.jupyterapp.commands;"
            " run.execute('notebook:clear-all-cell-outputs').then(() => "
            "run.execute('notebook:run-all-cells')); }"
        )
        point = page.locator(".jp-OutputArea .js-plotly-plot .scatterlayer .point").first
        point.wait_for(timeout=LOAD_TIMEOUT_MS)
        page.wait_for_selector(KERNEL_IDLE, timeout=LOAD_TIMEOUT_MS)
        point.scroll_into_view_if_needed()
        box = point.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_function(
            "() => { const v = document.querySelector('.jp-OutputArea video[autoplay]');"
            " return v && (v.readyState >= 2 || v.error); }",
            timeout=LOAD_TIMEOUT_MS,
        )
        player = page.evaluate(
            "() => { const v = document.querySelector('.jp-OutputArea video[autoplay]');"
            " return {ready: v.readyState, error: v.error && v.error.code, muted: v.muted,"
            " paused: v.paused, duration: v.duration}; }"
        )
        neighbour_players = "document.querySelectorAll('.jp-OutputArea video:not([autoplay])').length"
        with contextlib.suppress(
            PlaywrightTimeout
        ):  # the kernel cuts the neighbours' clips after starting the player
            page.wait_for_function(f"() => {neighbour_players} >= 6", timeout=LOAD_TIMEOUT_MS)
        neighbours = page.evaluate(f"() => {neighbour_players}")
        page.locator(".jp-OutputArea video[autoplay]").scroll_into_view_if_needed()
        screenshot(page, tmp_path, "jupyterlab_map.png")
        assert not page.blocked, f"JupyterLab asked the network for {page.blocked[:5]}"
    assert player["ready"] >= 2 and not player["error"] and not player["muted"], player
    assert not player["paused"], "the clicked clip did not start playing"
    assert player["duration"] > 4.5  # a 5 s segment
    assert neighbours >= 6, f"{neighbours} neighbour players (the clicked item and its 5 neighbours expected)"
