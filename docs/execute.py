"""Executed copies of the notebooks, for the docs site, cached by what they depend on.

The site shows every notebook with its outputs, so every notebook has to run. Running them all takes minutes,
so an executed copy is kept in `_proc/executed/` under a key made of the notebook's cells and the library's
source: a copy whose key still matches is used as it is, any other notebook runs again (nbclient, one kernel
per notebook, several notebooks at once). The notebook tests write the same copies as they go (`conftest.py`
hands nbval's outputs to `save`), so `make docs` after `make test`, and the docs test after the notebook tests
in one session, run nothing twice. A cell that fails stops the build with the notebook and the cell named.
"""

import hashlib
import json
import os
import re
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
CACHE = ROOT / "_proc" / "executed"
SKIPPED = re.compile(r"^\s*#\s*\|\s*(eval:\s*false|notest)\s*$", re.MULTILINE)  # nbdev's flags: not run


class NotebookFailed(RuntimeError):
    "A notebook cell raised while the docs were being built."


def library_hash() -> str:
    "A hash of the library's source and templates: outputs depend on them as much as on the notebook."
    h = hashlib.blake2b(digest_size=16)
    for p in sorted((ROOT / "tradelab").rglob("*")):
        if p.is_file() and p.suffix in (".py", ".ipynb", ".html", ".mako") and "__pycache__" not in p.parts:
            h.update(p.relative_to(ROOT).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def notebook_key(nb_path: Path, nb=None, library: str | None = None) -> str:
    "The cache key of a notebook: its cells' types and sources, and the library's hash."
    nb = nb if nb is not None else nbformat.read(nb_path, as_version=4)
    cells = [[c.cell_type, c.source] for c in nb.cells]
    described = json.dumps([Path(nb_path).resolve().relative_to(ROOT).as_posix(), cells, library or library_hash()])
    return hashlib.blake2b(described.encode(), digest_size=16).hexdigest()


def _cache_path(nb_path: Path) -> Path:
    return CACHE / Path(nb_path).resolve().relative_to(NBS)


def cached(nb_path: Path, library: str | None = None, nb=None):
    "The executed copy of a notebook (`nb`, read if not given), if made from these cells and this library; else None."
    path = _cache_path(nb_path)
    if not path.exists():
        return None
    copy = nbformat.read(path, as_version=4)
    key = copy.metadata.get("tradelab_docs", {}).get("key")
    return copy if key == notebook_key(nb_path, nb, library) else None


def save(nb_path: Path, executed, library: str | None = None) -> Path:
    "Keep an executed copy (written whole or not at all)."
    path = _cache_path(nb_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    executed.metadata["tradelab_docs"] = {"key": notebook_key(nb_path, library=library)}
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        nbformat.write(executed, f)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def execute(nb_path: Path, timeout: int = 1200):
    "Run a notebook in a fresh kernel, in its own folder; cells flagged not to run keep no outputs."
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb_path = Path(nb_path).resolve()
    nb = nbformat.read(nb_path, as_version=4)
    run = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in run.cells:
        if cell.cell_type == "code" and SKIPPED.search(cell.source):
            cell.source = ""
    client = NotebookClient(
        run, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": nb_path.parent}}
    )
    try:
        client.execute(stderr=subprocess.DEVNULL)  # the kernel's own start-up warnings; cell errors come as outputs
    except CellExecutionError as e:
        index = next(
            (i for i, c in enumerate(run.cells) if any(o.output_type == "error" for o in c.get("outputs", []))), None
        )
        where = f"cell {index}" if index is not None else "a cell"
        first = run.cells[index].source.strip().splitlines()[0][:80] if index is not None else ""
        error = str(e).strip().splitlines()[-1][:300] if str(e).strip() else type(e).__name__
        shown = nb_path.relative_to(ROOT) if nb_path.is_relative_to(ROOT) else nb_path
        raise NotebookFailed(f"{shown}: {where} ({first!r}) failed: {error}") from None
    for cell, done in zip(nb.cells, run.cells, strict=True):
        if cell.cell_type == "code":
            cell.outputs = done.outputs if done.source else []
    return nb


def _execute_and_save(nb_path: str, library: str) -> str:
    save(Path(nb_path), execute(Path(nb_path)), library)
    return nb_path


def executed_notebooks(paths: list[Path], workers: int = 2, progress: bool = True) -> dict:
    "Executed copies of the notebooks: from the cache where it matches, else run (`workers` at a time)."
    library = library_hash()
    out = {}
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        runs = any(c.cell_type == "code" and c.source.strip() for c in nb.cells)
        out[p] = cached(p, library, nb) if runs else nb  # a notebook without code has nothing to run
    todo = [p for p, nb in out.items() if nb is None]
    if not todo:
        return out
    from rich.progress import Progress

    with Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task(f"running {len(todo)} notebooks ({len(paths) - len(todo)} cached)", total=len(todo))
        with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [pool.submit(_execute_and_save, str(p), library) for p in todo]
            try:
                for fut in as_completed(futures):
                    fut.result()  # NotebookFailed names the notebook and the cell
                    bar.advance(task)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    for p in todo:
        out[p] = cached(p, library)
    return out
