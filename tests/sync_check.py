"""Check that the library, the notebooks and README.md are in sync with the notebooks.

Runs nbdev_export and nbdev_clean and rebuilds README.md from nbs/index.ipynb, then compares the tree
before and after (so it also works with uncommitted work). Exits 1 and names the files that changed.
`--readme-only` just rebuilds README.md.
"""

import hashlib
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def build_readme() -> None:
    "README.md is nbs/index.ipynb's markdown cells (nbdev_readme needs Quarto, which is not available offline)."
    nb = nbformat.read(ROOT / "nbs" / "index.ipynb", as_version=4)
    parts = []
    for cell in nb.cells:
        src = cell.source.strip()
        if cell.cell_type == "markdown":
            parts.append(src)
        elif cell.cell_type == "code" and src and not src.startswith("#| hide"):
            parts.append(f"```python\n{src}\n```")
    text = "\n\n".join(parts) + "\n"
    target = ROOT / "README.md"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


def snapshot() -> dict:
    files = [
        p
        for d in ("tradelab", "nbs")
        for p in (ROOT / d).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts
    ]
    files.append(ROOT / "README.md")
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None for p in files}


def main() -> int:
    if "--readme-only" in sys.argv:
        build_readme()
        return 0
    before = snapshot()
    for cmd in ("nbdev_export", "nbdev_clean"):
        subprocess.run([str(BIN / cmd)], cwd=ROOT, check=True)
    build_readme()
    after = snapshot()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        print("out of sync with the notebooks (nbdev_export / nbdev_clean / README changed these files):")
        for k in changed:
            print("  ", k)
        print("The tree now holds the synced versions: review them and commit.")
        return 1
    print("library, notebooks and README are in sync")
    return 0


if __name__ == "__main__":
    sys.exit(main())
