"""Build the documentation site into _docs/ offline.

nbdev's own path renders the notebooks with Quarto (`nbdev_docs`), which cannot be installed offline. This
builds the same pages from the same notebooks with nbconvert: nbdev's directives are honoured (`#| hide`
cells are dropped, directive comments removed), every exported function and class gets its API entry from
nbdev's `show_doc` right after the cell that defines it, and every page carries a navigation sidebar.
Pages are named as nbdev names them (`04_backtest.ipynb` -> `backtest.html`), so the links in
`tradelab/_modidx.py` resolve. Run: .venv/bin/python docs/build.py [--out DIR]
"""

import ast
import html
import importlib
import re
import shutil
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
DIRECTIVE = re.compile(r"^\s*#\s*\|\s*(.*)$")

CSS = """
<style>
body { margin: 0; }
.tl-layout { display: flex; min-height: 100vh; }
.tl-nav { width: 240px; flex: none; background: #f6f8fa; border-right: 1px solid #ddd; padding: 16px;
          font-family: sans-serif; font-size: 14px; }
.tl-nav h2 { font-size: 18px; margin: 0 0 12px; }
.tl-nav h3 { font-size: 13px; color: #666; margin: 16px 0 6px; text-transform: uppercase; }
.tl-nav a { display: block; padding: 3px 0; color: #0969da; text-decoration: none; }
.tl-nav a.current { font-weight: bold; color: #000; }
.tl-main { flex: 1; min-width: 0; padding: 0 24px; }
</style>
"""


def page_name(nb: Path) -> str:
    "nbdev's page name: the notebook stem without its number prefix."
    return re.sub(r"^\d+[a-z]?_", "", nb.stem)


def directives(src: str) -> dict:
    out = {}
    for line in src.splitlines():
        m = DIRECTIVE.match(line)
        if m:
            key, _, val = m.group(1).partition(" ")
            out[key.rstrip(":")] = val.strip()
    return out


def strip_directives(src: str) -> str:
    return "\n".join(line for line in src.splitlines() if not DIRECTIVE.match(line)).strip()


def public_names(src: str) -> list[str]:
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")]


def api_markdown(module, names: list[str]) -> str:
    from nbdev.showdoc import show_doc

    parts = []
    for name in names:
        obj = getattr(module, name, None)
        if obj is None:
            continue
        parts.append(show_doc(obj)._repr_markdown_())
        if isinstance(obj, type):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and callable(member) and getattr(member, "__doc__", None):
                    parts.append(show_doc(member, name=f"{name}.{attr}")._repr_markdown_())
    return "\n\n".join(parts)


def render(nb_path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(nb_path, as_version=4)
    module = None
    cells = []
    for cell in nb.cells:
        d = directives(cell.source) if cell.cell_type == "code" else {}
        if "default_exp" in d:
            module = importlib.import_module(f"tradelab.{d['default_exp']}")
            continue
        if "hide" in d:
            continue
        src = strip_directives(cell.source) if cell.cell_type == "code" else cell.source
        if cell.cell_type == "code" and not src:
            continue
        new = nbformat.v4.new_code_cell(src) if cell.cell_type == "code" else nbformat.v4.new_markdown_cell(src)
        cells.append(new)
        if ("export" in d or "exports" in d) and module is not None:
            md = api_markdown(module, public_names(src))
            if md:
                cells.append(nbformat.v4.new_markdown_cell(md))
    nb.cells = cells
    return nb


def sidebar(pages: list[tuple[str, str, str]], current: str, depth: int) -> str:
    up = "../" * depth
    items = {"": [], "API": [], "Tutorials": []}
    for section, href, title in pages:
        cls = ' class="current"' if href == current else ""
        items[section].append(f'<a href="{up}{href}"{cls}>{html.escape(title)}</a>')
    out = [f'<nav class="tl-nav"><h2><a href="{up}index.html">tradelab</a></h2>']
    for section, links in items.items():
        if links:
            out.append(f"<h3>{section}</h3>" if section else "")
            out += links
    return "\n".join(out) + "</nav>"


def title_of(nb_path: Path) -> str:
    nb = nbformat.read(nb_path, as_version=4)
    for c in nb.cells:
        if c.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", c.source, re.M)
            if m:
                return m.group(1).strip()
    return page_name(nb_path)


def build(out: Path) -> list[Path]:
    sys.path.insert(0, str(ROOT))
    api = sorted(p for p in NBS.glob("[0-9]*.ipynb"))
    tutorials = sorted((NBS / "tutorials").glob("*.ipynb"))
    pages = [("", "index.html", "Home")]
    pages += [("API", f"{page_name(p)}.html", page_name(p)) for p in api]
    pages += [("Tutorials", f"tutorials/{page_name(p)}.html", title_of(p)) for p in tutorials]
    if out.exists():
        shutil.rmtree(out)
    exporter = HTMLExporter(template_name="lab")
    written = []
    for nb_path, href in (
        [(NBS / "index.ipynb", "index.html")]
        + [(p, f"{page_name(p)}.html") for p in api]
        + [(p, f"tutorials/{page_name(p)}.html") for p in tutorials]
    ):
        body, _ = exporter.from_notebook_node(render(nb_path))
        depth = href.count("/")
        body = body.replace("</head>", CSS + "</head>", 1)
        nav = sidebar(pages, href, depth)
        body = re.sub(
            r"<body([^>]*)>",
            lambda m, nav=nav: f'<body{m.group(1)}><div class="tl-layout">{nav}<div class="tl-main">',
            body,
            count=1,
        )
        body = body.replace("</body>", "</div></div></body>", 1)
        target = out / href
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
        written.append(target)
    if (NBS / "images").is_dir():  # screenshots the pages show (nbs/images/..., linked relatively)
        shutil.copytree(NBS / "images", out / "images")
    return written


if __name__ == "__main__":
    out = Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else ROOT / "_docs"
    files = build(out)
    print(f"built {len(files)} pages into {out}")
