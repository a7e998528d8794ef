"""Build the documentation site into _docs/, offline.

nbdev's own path renders the notebooks with Quarto (`nbdev_docs`), which cannot be installed offline. This builds
the site from the same notebooks and honours the same conventions (docs/render.py): every notebook is executed
on the shared sample data first (docs/execute.py, cached) so that pages show their results; `#| export` cells
show their API entries instead of their source; guides, tutorials and the API each have a section of the sidebar;
a prebuilt index gives client-side search that works without a server. Pages are named as nbdev names them
(`04_backtest.ipynb` -> `backtest.html`) and anchored as nbdev anchors them, so the links in
`tradelab/_modidx.py` resolve.

Run: .venv/bin/python docs/build.py [--out DIR] [--workers N] [--no-execute]
"""

import html
import json
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from execute import NotebookFailed, executed_notebooks  # noqa: E402
from render import FORMATTER, HEADING, NBS, ROOT, Page, page_name, plain_text, render_notebook  # noqa: E402

ASSETS = Path(__file__).resolve().parent / "assets"
SECTIONS = ("Guides", "Tutorials", "API")


def site_notebooks() -> list[tuple[str, Path, str]]:
    "(section, notebook, page path) of every page, in the sidebar's order."
    pages = [("", NBS / "index.ipynb", "index.html")]
    pages += [("Guides", p, f"guides/{page_name(p)}.html") for p in sorted((NBS / "guides").glob("*.ipynb"))]
    pages += [("Tutorials", p, f"tutorials/{page_name(p)}.html") for p in sorted((NBS / "tutorials").glob("*.ipynb"))]
    pages += [("API", p, f"{page_name(p)}.html") for p in sorted(NBS.glob("[0-9]*.ipynb"))]
    return pages


def sidebar(entries: list[tuple[str, str, str]], current: str, up: str) -> str:
    out = [f'<a class="brand" href="{up}index.html">tradelab</a>']
    out.append(f'<input id="search" type="search" placeholder="Search (press /)" aria-label="Search" data-root="{up}">')
    out.append('<div id="search-results" hidden></div><nav>')
    for section in SECTIONS:
        links = [(href, title) for s, href, title in entries if s == section]
        if links:
            out.append(f"<h3>{section}</h3>")
            for href, title in links:
                cls = ' class="current"' if href == current else ""
                out.append(f'<a href="{up}{href}"{cls}>{html.escape(title)}</a>')
    return "\n".join(out) + "</nav>"


def toc(body: str) -> str:
    links = [
        f'<a class="l{level}" href="#{anchor}">{html.escape(plain_text(inner).removesuffix(" #"))}</a>'
        for level, anchor, inner in re.findall(r'<h([23]) id="([^"]+)"[^>]*>(.*?)</h\1>', body, re.S)
    ]
    return f"<aside class='toc'><h4>On this page</h4>{''.join(links)}</aside>" if len(links) > 1 else ""


def page_html(page: Page, title: str, description: str, body: str, nav: str) -> str:
    up = page.up
    plotly = f'<script src="{up}assets/plotly.min.js"></script>' if page.plots else ""
    lead = f'<p class="description">{html.escape(description)}</p>' if description else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} – tradelab</title>
<link rel="stylesheet" href="{up}assets/site.css"><link rel="stylesheet" href="{up}assets/pygments.css">{plotly}
</head><body><div class="layout">
<aside class="sidebar">{nav}</aside>
<main class="content"><h1 class="title" id="top">{html.escape(title)}</h1>{lead}
{body}
</main>{toc(body)}</div>
<script src="{up}assets/search-index.js"></script><script src="{up}assets/search.js"></script>
</body></html>
"""


def search_entries(href: str, title: str, description: str, body: str) -> list[dict]:
    "One entry per section of a page (the text under each anchored heading), for the client-side search."
    cuts = list(HEADING.finditer(body))
    lead = plain_text(body[: cuts[0].start()] if cuts else body)  # the text before the first heading
    entries = [{"t": title, "p": title, "u": href, "x": (description + " " + lead)[:400]}]
    for i, m in enumerate(cuts):
        anchor = re.search(r'id="([^"]+)"', m.group(2) or "")
        if not anchor:
            continue
        end = cuts[i + 1].start() if i + 1 < len(cuts) else len(body)
        text = plain_text(body[m.end() : end])
        heading = plain_text(m.group(3)).removesuffix(" #").strip()
        entries.append({"t": heading, "p": title, "u": f"{href}#{anchor.group(1)}", "x": text[:400]})
    return entries


def build(out: Path, workers: int = 2, execute: bool = True, progress: bool = True) -> list[Path]:
    "Execute (or reuse) every notebook and write the site into `out`; returns the pages written."
    sys.path.insert(0, str(ROOT))
    pages = site_notebooks()
    hrefs = {nb.resolve(): href for _, nb, href in pages}
    if execute:
        notebooks = executed_notebooks([nb for _, nb, _ in pages], workers=workers, progress=progress)
    else:
        notebooks = {nb: nbformat.read(nb, as_version=4) for _, nb, _ in pages}
    rendered = []
    for section, nb_path, href in pages:
        page = Page(nb_path.resolve(), href, hrefs)
        title, description, body = render_notebook(notebooks[nb_path], page)
        rendered.append((section, href, page, title, description, body))
    entries = [(section, href, title) for section, href, _, title, _, _ in rendered]
    staging = out.with_name(out.name + ".building")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "assets").mkdir(parents=True)
    written, index = [], []
    for _section, href, page, title, description, body in rendered:
        target = staging / href
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page_html(page, title, description, body, sidebar(entries, href, page.up)))
        written.append(out / href)
        index += search_entries(href, title, description, body)
    for asset in ASSETS.iterdir():
        shutil.copy(asset, staging / "assets" / asset.name)
    (staging / "assets" / "pygments.css").write_text(FORMATTER.get_style_defs(".highlight"))
    script = "window.TRADELAB_SEARCH = " + json.dumps(index, ensure_ascii=False, separators=(",", ":")) + ";\n"
    (staging / "assets" / "search-index.js").write_text(script)
    if any(p.plots for _, _, p, _, _, _ in rendered):
        import plotly

        shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", staging / "assets")
    if (NBS / "images").is_dir():  # screenshots the pages show (nbs/images/...)
        shutil.copytree(NBS / "images", staging / "images")
    if out.exists():  # the previous site stays whole until the new one is complete
        shutil.rmtree(out)
    staging.rename(out)
    return written


def main(argv: list[str]) -> int:
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else ROOT / "_docs"
    workers = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 2
    started = time.monotonic()
    try:
        files = build(out.resolve(), workers=workers, execute="--no-execute" not in argv)
    except NotebookFailed as e:
        print(f"error: the docs were not built: {e}", file=sys.stderr)
        return 1
    print(f"built {len(files)} pages into {out} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
