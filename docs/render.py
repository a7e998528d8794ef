"""One executed notebook to one page, with nbdev's conventions.

What nbdev with Quarto shows, this shows: `#| hide` and `#| exporti` cells are left out; an `#| export` cell's
source is hidden and each function or class it defines gets one API entry (signature, docstring and the
parameter table nbdev's docments make), unless the notebook documents it itself with `show_doc`; `#| exports`
shows the source too; `#| echo: false` hides a cell's source, `#| output: false` its outputs. Code shows without
execution prompts, outputs as they were produced: HTML reprs, tables, Rich output, images, plotly figures (drawn
by a plotly.js kept beside the pages, so they work offline). Links to notebooks become links to their pages.
"""

import ast
import base64
import html
import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
REPO_URL = "https://github.com/tradelab/tradelab/blob/main/"
DIRECTIVE = re.compile(r"^\s*#\s*\|\s*(.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
HEADING = re.compile(r"<h([1-6])(\s[^>]*)?>(.*?)</h\1>", re.S)
HREF = re.compile(r'(href|src)="([^"]+)"')
FORMATTER = HtmlFormatter(cssclass="highlight")


def _highlight(code: str, lang: str, _attrs) -> str:
    "Fenced Python in markdown, highlighted as the code cells are (a `<pre>` of its own, not wrapped again)."
    if lang not in ("python", "py"):
        return ""
    return f'<pre class="highlight">{highlight(code, PythonLexer(), HtmlFormatter(nowrap=True))}</pre>'


MD = MarkdownIt("commonmark", {"html": True, "highlight": _highlight}).enable("table").enable("strikethrough")
PLOTLY = "application/vnd.plotly.v1+json"


def page_name(nb: Path) -> str:
    "nbdev's page name: the notebook's stem without its number prefix (`04_backtest` -> `backtest`)."
    return re.sub(r"^\d+[a-z]?_", "", nb.stem)


def directives(src: str) -> dict:
    "The `#| key value` lines at the top of a cell."
    out = {}
    for line in src.splitlines():
        m = DIRECTIVE.match(line)
        if not m:
            if line.strip():
                break
            continue
        key, _, val = m.group(1).partition(" ")
        out[key.rstrip(":")] = val.strip()
    return out


def strip_directives(src: str) -> str:
    return "\n".join(line for line in src.splitlines() if not DIRECTIVE.match(line)).strip()


def slug(text: str) -> str:
    "An anchor as nbdev makes it: lower case, punctuation other than . _ - dropped, spaces to dashes."
    text = html.unescape(re.sub(r"<[^>]+>", "", text)).strip().lower()
    return re.sub(r"\s+", "-", re.sub(r"[^\w.\- ]", "", text))


def plain_text(fragment: str) -> str:
    "The words of an HTML fragment (no scripts, styles, SVG drawings or tags)."
    fragment = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", fragment, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


@dataclass
class Page:
    "A page being written: where it lives, its parts, its anchors and what it needs."

    source: Path  # the notebook
    href: str  # the page's path in the site (tutorials/first_backtest.html)
    hrefs: dict  # every notebook of the site -> its page's path
    parts: list = field(default_factory=list)
    ids: set = field(default_factory=set)
    plots: int = 0  # plotly figures drawn (the page then loads plotly.js)

    @property
    def up(self) -> str:
        return "../" * self.href.count("/")

    def unique_id(self, wanted: str) -> str:
        new, n = wanted or "section", 1
        while new in self.ids:
            n += 1
            new = f"{wanted}-{n}"
        self.ids.add(new)
        return new

    def link(self, target: str) -> str:
        "A link of the notebook, as the page must write it: notebooks to pages, other repository files to GitHub."
        if re.match(r"^[a-z][\w+.-]*:|^#|^//", target):
            return target
        path, _, anchor = target.partition("#")
        for base in (self.source.parent, ROOT):
            resolved = (base / path).resolve()
            if resolved in self.hrefs:
                return self.up + self.hrefs[resolved] + (f"#{anchor}" if anchor else "")
            if resolved.is_relative_to(NBS / "images") and resolved.exists():
                return self.up + resolved.relative_to(NBS).as_posix()
            if resolved.exists() and resolved.is_relative_to(ROOT):
                return REPO_URL + resolved.relative_to(ROOT).as_posix() + (f"#{anchor}" if anchor else "")
        return target

    def markdown(self, text: str) -> str:
        "Markdown to HTML, with its links made to the site and an anchor on every heading."
        out = HREF.sub(lambda m: f'{m.group(1)}="{html.escape(self.link(html.unescape(m.group(2))))}"', MD.render(text))
        return HEADING.sub(self._anchor, out)

    def _anchor(self, m) -> str:
        level, attrs, inner = m.group(1), m.group(2) or "", m.group(3)
        if "id=" in attrs:
            return m.group(0)
        anchor = self.unique_id(slug(inner))
        return f'<h{level} id="{anchor}"{attrs}>{inner}<a class="anchor" href="#{anchor}">#</a></h{level}>'


def code_html(src: str) -> str:
    return f'<div class="cell-input">{highlight(src, PythonLexer(), FORMATTER)}</div>'


def output_html(o, page: Page) -> str:
    kind = o.get("output_type")
    if kind == "stream":
        text = ANSI.sub("", o.get("text", ""))
        return f'<pre class="output {html.escape(o.get("name", ""))}">{html.escape(text)}</pre>' if text.strip() else ""
    if kind == "error":
        return f'<pre class="output error">{html.escape(ANSI.sub("", chr(10).join(o.get("traceback", []))))}</pre>'
    data = o.get("data", {})
    if PLOTLY in data:
        page.plots += 1
        fig = data[PLOTLY]
        payload = json.dumps({"data": fig.get("data", []), "layout": fig.get("layout", {})}).replace("</", "<\\/")
        div = f"plot-{page.plots}"
        return (
            f'<div class="output plotly" id="{div}"></div><script>Plotly.newPlot("{div}", ...(p => [p.data, p.layout,'
            f" {{responsive: true, displaylogo: false}}])({payload}));</script>"
        )
    if "text/html" in data:
        return f'<div class="output html">{_text(data["text/html"])}</div>'
    if "image/svg+xml" in data:
        return f'<div class="output image">{_text(data["image/svg+xml"])}</div>'
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            raw = _text(data[mime]).replace("\n", "")
            base64.b64decode(raw[:64] + "=" * (-len(raw[:64]) % 4))  # a malformed image fails the build here
            return f'<div class="output image"><img alt="figure" src="data:{mime};base64,{raw}"></div>'
    if "text/markdown" in data:
        return f'<div class="output markdown">{page.markdown(_text(data["text/markdown"]))}</div>'
    if "text/plain" in data:
        return f'<pre class="output">{html.escape(ANSI.sub("", _text(data["text/plain"])))}</pre>'
    return ""


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def public_names(src: str) -> list[str]:
    "The functions and classes an export cell defines, in order (nbdev documents these)."
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return []
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [n.name for n in tree.body if isinstance(n, kinds) and not n.name.startswith("_")]


def _annotation(anno) -> str:
    if anno is inspect.Parameter.empty or anno is None:
        return ""
    if isinstance(anno, str):
        return anno
    if isinstance(anno, type):
        return anno.__name__
    return str(anno).replace("typing.", "")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _signature(obj, name: str, params: dict) -> str:
    "The call as nbdev shows it: parameters with their types and defaults, and what it returns."
    shown = []
    for arg, p in params.items():
        if arg == "return":
            continue
        star = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(p.get("kind"), "")
        anno = _annotation(p.get("anno"))
        text = star + arg + (f": {anno}" if anno else "")
        if p.get("default", inspect.Parameter.empty) is not inspect.Parameter.empty:
            default = repr(p["default"])
            shown_default = default if len(default) <= 60 else default[:57] + "..."
            text += f" = {shown_default}" if anno else f"={shown_default}"
        shown.append(text)
    returns = _annotation(params.get("return", {}).get("anno", inspect.Parameter.empty))
    head = ("class " if isinstance(obj, type) else "def ") + name.rsplit(".", 1)[-1]
    one_line = f"{head}({', '.join(shown)})" + (f" -> {returns}" if returns else "")
    if len(one_line) <= 100:
        return one_line
    return f"{head}(\n" + "".join(f"    {s},\n" for s in shown) + ")" + (f" -> {returns}" if returns else "")


def _params_table(params: dict) -> str:
    "nbdev's parameter table from docments: each parameter's type, default and the comment beside it."
    rows = []
    for arg, p in params.items():
        if arg == "return" and not p.get("docment"):
            continue
        default = p.get("default", inspect.Parameter.empty)
        shown = "" if default is inspect.Parameter.empty else repr(default)
        rows.append(
            f"| `{arg}` | {_cell(_annotation(p.get('anno')))} | {_cell(shown)} | {_cell(p.get('docment') or '')} |"
        )
    if not any(p.get("docment") for p in params.values()):
        return ""  # as nbdev: a table only when the parameters are documented
    return "\n".join(["| | **Type** | **Default** | **Details** |", "|---|---|---|---|", *rows])


def _doc(obj) -> str:
    "The object's own docstring; a class without one does not borrow its base's (pydantic's BaseModel's)."
    if isinstance(obj, type):
        return inspect.cleandoc(vars(obj).get("__doc__") or "")
    return inspect.getdoc(obj) or ""


def _fields_table(obj) -> str:
    "A pydantic model's fields: name, type, default, description."
    fields = getattr(obj, "model_fields", None)
    if not isinstance(fields, dict) or not fields:
        return ""
    rows = ["| field | **Type** | **Default** | **Details** |", "|---|---|---|---|"]
    for name, f in fields.items():
        default = "required" if f.is_required() else repr(f.default)
        rows.append(
            f"| `{name}` | {_cell(_annotation(f.annotation))} | {_cell(default)} | {_cell(f.description or '')} |"
        )
    return "\n".join(rows)


def api_entry(page: Page, obj, name: str, level: int = 3) -> str:
    "One API entry: heading (anchored as nbdev anchors it), signature, docstring, parameter table."
    from fastcore.docments import docments

    is_model = isinstance(getattr(obj, "model_fields", None), dict)
    try:
        params = {} if is_model else docments(obj, full=True)
    except (TypeError, ValueError, OSError):
        params = {}
    params = {k: v for k, v in params.items() if k not in ("self", "cls")}
    try:  # the annotations as written (docments evaluates them, and one it cannot resolve becomes NoneType)
        written = {k: p.annotation for k, p in inspect.signature(obj).parameters.items()}
        written["return"] = inspect.signature(obj).return_annotation
    except (TypeError, ValueError):
        written = {}
    for k, v in params.items():
        if k in written and (isinstance(written[k], str) or written[k] is inspect.Parameter.empty):
            v["anno"] = written[k]  # none written: none shown (docments would guess NoneType from a None default)
    if is_model:
        empty = inspect.Parameter.empty
        fields = obj.model_fields.items()
        shown = {k: {"anno": f.annotation, "default": empty if f.is_required() else f.default} for k, f in fields}
    md = f"```python\n{_signature(obj, name, shown if is_model else params)}\n```\n\n{_doc(obj)}\n\n"
    md += _fields_table(obj) if is_model else _params_table(params)
    anchor = page.unique_id(name.lower())
    code = f"<code>{html.escape(name)}</code>"
    return (
        f'<section class="api"><h{level} id="{anchor}" class="api-name">{code}</h{level}>{page.markdown(md)}</section>'
    )


def api_html(page: Page, module, names: list[str], documented: set) -> str:
    parts = []
    for name in names:
        obj = getattr(module, name, None)
        if obj is None or name in documented:
            continue
        documented.add(name)
        parts.append(api_entry(page, obj, name))
        if isinstance(obj, type):
            for attr, member in vars(obj).items():
                fn = member.__func__ if isinstance(member, classmethod | staticmethod) else member
                if attr.startswith("_") or not callable(fn) or not (getattr(fn, "__doc__", None) or "").strip():
                    continue
                if isinstance(member, property):
                    continue
                parts.append(api_entry(page, fn, f"{name}.{attr}", level=4))
    return "".join(parts)


def render_notebook(nb, page: Page) -> tuple[str, str, str]:
    "The page's title, description and body HTML."
    import importlib

    module, title, description = None, page_name(page.source), ""
    documented = {
        m.group(1) for c in nb.cells if c.cell_type == "code" for m in re.finditer(r"show_doc\((\w+)", c.source)
    }
    body, titled = [], False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text = cell.source
            m = re.match(r"\s*#\s+([^\n]+?)\s*\n(?:\s*\n)*((?:>[^\n]*(?:\n|$))*)", text + "\n")
            if not titled and m:  # nbdev's front matter: `# title` and `> description` (one or more `>` lines)
                title, titled = m.group(1), True
                description = " ".join(line.lstrip(">").strip() for line in m.group(2).splitlines()).strip()
                text = text[m.end() :]
            if text.strip():
                body.append(page.markdown(text))
            continue
        if cell.cell_type != "code":
            continue
        d = directives(cell.source)
        if "default_exp" in d:
            module = importlib.import_module(f"tradelab.{d['default_exp']}")
            continue
        if "hide" in d or "exporti" in d or d.get("include") == "false":
            continue
        src = strip_directives(cell.source)
        exported = "export" in d or "exports" in d
        show_source = src and ("exports" in d or not exported) and d.get("echo") != "false"
        parts = [code_html(src)] if show_source else []
        if d.get("output") != "false":
            parts += [out for o in cell.get("outputs", []) if (out := output_html(o, page))]
        if parts:
            body.append(f'<div class="cell">{"".join(parts)}</div>')
        if exported and module is not None:
            body.append(api_html(page, module, public_names(src), documented))
    return title, description, "\n".join(body)
