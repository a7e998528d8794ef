"""The docs site (docs/build.py) builds offline from the notebooks with their executed outputs, honours nbdev's
conventions, resolves every internal link and anchor, searches client-side, and renders in headless Chromium.

The build executes every notebook unless an executed copy made from the same cells and library exists (the notebook
tests make those copies as they run, so in `make test`'s notebook lane nothing runs twice)."""

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sys.path.insert(0, str(ROOT / "docs"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs") / "_docs"
    r = subprocess.run(
        [sys.executable, str(ROOT / "docs/build.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=3000,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return out


class _Page(HTMLParser):
    "The ids, links and cell inputs of one page."

    def __init__(self):
        super().__init__()
        self.ids, self.links, self.scripts = set(), [], []
        self.inputs, self._depth = [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag in ("img", "script") and a.get("src"):
            self.links.append(a["src"])
        if tag == "link" and a.get("href"):
            self.links.append(a["href"])
        if tag == "div" and "cell-input" in (a.get("class") or "").split():
            self.inputs.append("")
            self._depth = 1
        elif tag == "div" and self._depth:
            self._depth += 1

    def handle_endtag(self, tag):
        if tag == "div" and self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth:
            self.inputs[-1] += data


def parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text())
    return p


def pages(site: Path) -> dict:
    return {p.relative_to(site).as_posix(): p for p in site.rglob("*.html")}


def test_every_notebook_has_its_page_and_nothing_is_fetched_from_the_internet(site):
    found = pages(site)
    expected = {"index.html"}
    expected |= {"guides/" + re.sub(r"^\d+[a-z]?_", "", p.stem) + ".html" for p in (NBS / "guides").glob("*.ipynb")}
    expected |= {f"tutorials/{p.stem}.html" for p in (NBS / "tutorials").glob("*.ipynb")}
    expected |= {re.sub(r"^\d+[a-z]?_", "", p.stem) + ".html" for p in NBS.glob("[0-9]*.ipynb")}
    assert set(found) == expected, set(found) ^ expected
    assert {f"guides/{g}.html" for g in ("research", "reports", "paper_trading", "operations")} <= expected
    for name, path in found.items():  # scripts, styles and images are the site's own: nothing loads from elsewhere
        remote = [u for u in parse(path).links if u.startswith(("http:", "https:", "//"))]
        assert not [u for u in remote if re.search(r"\.(js|css|png|jpe?g|svg)(\?|$)", u)], (name, remote)


def test_every_internal_link_and_anchor_resolves(site):
    parsed = {name: parse(path) for name, path in pages(site).items()}
    broken = []
    for name, page in parsed.items():
        for href in page.links:
            if re.match(r"^[a-z][\w+.-]*:|^//", href) or href.startswith("data:"):
                continue
            target, _, anchor = href.partition("#")
            resolved = (site / name).parent / target if target else site / name
            rel = os.path.relpath(resolved.resolve(), site)
            if not resolved.resolve().exists():
                broken.append(f"{name} -> {href} (no file)")
            elif anchor and (rel not in parsed or anchor not in parsed[rel].ids):
                broken.append(f"{name} -> {href} (no anchor)")
    assert not broken, broken[:30]


def test_nbdev_doc_links_land_on_their_api_entries(site):
    "tradelab/_modidx.py's links (what nbdev's doc_link and the docs' backticks use) reach an entry, once per page."
    from tradelab._modidx import d

    parsed = {name: parse(path) for name, path in pages(site).items()}
    missing, checked = [], 0
    for module, syms in d["syms"].items():
        if module.count(".") != 1:
            continue  # tradelab.migrations.*: alembic's scripts, not notebooks
        public = set(importlib.import_module(module).__all__)
        for qualname, (link, _) in syms.items():
            parts = qualname.removeprefix(module + ".").split(".")
            if len(parts) != 1 or parts[0] not in public:
                continue  # methods have entries when they have docstrings; internal names have none
            page, _, anchor = link.partition("#")
            checked += 1
            if page not in parsed or anchor not in parsed[page].ids:
                missing.append(link)
    assert checked > 300 and not missing, missing[:20]
    for name, path in pages(site).items():  # one entry per exported name: no heading id repeated for an API name
        api = re.findall(r'<h[34] id="([^"]+)" class="api-name"', path.read_text())
        assert len(api) == len(set(api)), (name, sorted({a for a in api if api.count(a) > 1}))
    backtest = (site / "backtest.html").read_text()
    assert backtest.count('class="api-name"><code>Costs</code>') == 0  # Costs lives on the costs page only
    assert (site / "costs.html").read_text().count('class="api-name"><code>Costs</code>') == 1


def test_export_cells_show_their_documentation_not_their_source(site):
    shown_source = []
    for nb_path in [*NBS.glob("[0-9]*.ipynb")]:
        page = parse(site / (re.sub(r"^\d+[a-z]?_", "", nb_path.stem) + ".html"))
        inputs = "\n".join(page.inputs)
        for cell in nbformat.read(nb_path, as_version=4).cells:
            first = re.search(r"^(?:def|class) \w+", cell.source, re.M)
            if cell.cell_type != "code" or not first:
                continue
            flags = re.findall(r"^#\|\s*(\w+)", cell.source, re.M)
            if "exports" in flags:
                assert first.group(0) in inputs, (nb_path.name, first.group(0))  # asked for: shown
            elif {"export", "exporti", "hide"} & set(flags) and first.group(0) + "(" in inputs.replace(" (", "("):
                shown_source.append(f"{nb_path.name}: {first.group(0)}")
    assert not shown_source, shown_source
    html = (site / "backtest.html").read_text()
    assert "#| export" not in html and "default_exp" not in html and "In&nbsp;[" not in html and "In [" not in html
    entry = re.search(r'<section class="api"><h3 id="backtest".*?</section>', html, re.S).group(0)
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", entry))
    assert "<table" in entry and "OHLCV frame" in words and "def backtest(" in words  # signature, docments table
    strategies = (site / "strategies.html").read_text()
    assert "concepts/models.md" not in strategies and "A base class for creating Pydantic models" not in strategies


def test_tutorials_show_their_executed_outputs(site):
    for page in sorted((site / "tutorials").glob("*.html")):
        html = page.read_text()
        outputs = re.findall(r'<(?:div|pre) class="output[^"]*">.*?</(?:div|pre)>', html, re.S)
        assert outputs, page.name
        assert re.search(r'class="output[^"]*">\s*(?:<[^>]+>\s*)*.*?<table', html, re.S), f"{page.name}: no table"
        images = re.findall(r'class="output image"|<svg|<img[^>]+src="data:image|class="output plotly"', html)
        assert images, f"{page.name}: no image"
    first = (site / "tutorials/first_backtest.html").read_text()
    assert "<svg" in first and "total_return" in first  # the result's equity curve and its statistics
    for guide in ("research", "reports", "paper_trading", "operations"):
        assert re.search(r'<img[^>]+src="\.\./images/\w+\.jpg"', (site / f"guides/{guide}.html").read_text()), guide


def test_a_failing_cell_fails_the_build_with_the_cell_named(tmp_path):
    from execute import NotebookFailed, execute

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("text"),
                nbformat.v4.new_code_cell("y = x / 0")]  # fmt: skip
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(NotebookFailed) as e:
        execute(path)
    assert "cell 2 ('y = x / 0')" in str(e.value) and "ZeroDivisionError" in str(e.value), e.value


def test_the_search_index_finds_api_entries_and_guides(site):
    script = (site / "assets/search-index.js").read_text()
    index = json.loads(script.removeprefix("window.TRADELAB_SEARCH = ").rstrip().rstrip(";"))
    urls = {e["u"] for e in index}
    assert "backtest.html#backtest" in urls and "guides/reports.html" in urls
    assert any(e["u"].startswith("tutorials/ml_signals.html#the-dataset") for e in index)


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("TRADELAB_REQUIRE_BROWSER"), reason="chromium not installed")
def test_pages_render_and_search_works_in_chromium(site, tmp_path):
    assert CHROMIUM, "TRADELAB_REQUIRE_BROWSER is set but chromium is not installed"
    from PIL import Image, ImageStat
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        for name in ("index.html", "backtest.html", "tutorials/first_backtest.html", "guides/paper_trading.html"):
            page.goto((site / name).as_uri())
            shot = tmp_path / (name.replace("/", "_") + ".png")
            page.screenshot(path=str(shot))
            assert max(ImageStat.Stat(Image.open(shot).convert("L")).stddev) > 10, f"{name} renders blank"
            assert page.locator(".sidebar nav a").count() > 60 and page.locator("main h1").count() >= 1
        images = page.evaluate("[...document.images].map(i => [i.src, i.naturalWidth])")
        assert images and all(w > 0 for _, w in images), images  # the screenshots load
        page.goto((site / "backtest.html").as_uri())  # search from a page one level down, offline (file://)
        page.fill("#search", "walk forward")
        page.wait_for_selector("#search-results a.hit")
        first = page.locator("#search-results a.hit").first
        assert "walk" in first.inner_text().lower()
        page.goto((site / "tutorials/ml_signals.html").as_uri())
        page.fill("#search", "costs")
        page.locator("#search-results a.hit").first.click()
        page.wait_for_load_state()
        assert page.url.startswith((site / "costs.html").as_uri()) or "costs" in page.url, page.url
        page.fill("#search", "zzqqxx")
        assert "Nothing matches" in page.inner_text("#search-results")
        browser.close()
    assert not errors, errors
