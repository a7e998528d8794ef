"""The docs site builds offline from the notebooks, every internal link resolves, and the home page and an API
page render in headless Chromium (non-blank screenshots)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs") / "_docs"
    r = subprocess.run(
        [sys.executable, str(ROOT / "docs/build.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    return out


def test_pages_and_api_reference(site):
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    assert {"index.html", "backtest.html", "data.html", "validation.html", "tutorials/first_backtest.html"} <= pages
    for page, name in (
        ("backtest", "backtest"),
        ("costs", "Costs"),
        ("results", "returns_stats"),
        ("results", "BacktestResult.to_dict"),
    ):  # show_doc entries, where each lives
        html = (site / f"{page}.html").read_text()
        assert re.search(rf"<h[34][^>]*>\s*{re.escape(name)}\s*<", html), (page, name)
    assert "#| export" not in html and "default_exp" not in html


def test_every_internal_link_resolves(site):
    broken = []
    for page in site.rglob("*.html"):
        for href in re.findall(r'href="([^"#:]+\.html)(?:#[^"]*)?"', page.read_text()):
            if not (page.parent / href).resolve().exists():
                broken.append(f"{page.relative_to(site)} -> {href}")
    assert not broken, broken


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("TRADELAB_REQUIRE_BROWSER"), reason="chromium not installed")
def test_pages_render_in_chromium(site, tmp_path):
    assert CHROMIUM, "TRADELAB_REQUIRE_BROWSER is set but chromium is not installed"
    from PIL import Image, ImageStat

    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,1400",
    ]
    for page in ("index.html", "backtest.html"):
        shot = tmp_path / f"{page}.png"
        subprocess.run(
            [CHROMIUM, *flags, f"--screenshot={shot}", (site / page).as_uri()], capture_output=True, timeout=120
        )
        img = Image.open(shot).convert("L")
        assert max(ImageStat.Stat(img).stddev) > 10, f"{page} renders blank"
        dom = subprocess.run(
            [CHROMIUM, *flags, "--dump-dom", (site / page).as_uri()], capture_output=True, text=True, timeout=120
        ).stdout
        assert 'class="tl-nav"' in dom and "tradelab" in dom


def test_every_notebook_has_its_own_page():
    "Two notebooks with the same name after the number prefix would write one page over the other."
    sys.path.insert(0, str(ROOT / "docs"))
    from build import page_name

    names = [page_name(nb) for nb in (ROOT / "nbs").rglob("*.ipynb") if ".ipynb_checkpoints" not in nb.parts]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
