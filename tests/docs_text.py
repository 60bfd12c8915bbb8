"""The project's documentation as the tests read it: README.md and the pages under docs/.

Tests that run a command or an example of the documentation take its fenced code block from here, by
the block's first line, wherever the block lives; so a block can move between pages without a test
silently reading nothing."""
import glob
import os.path as osp
import re

from conftest import ROOT

FENCED_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.S | re.M)


def doc_files():
    """README.md, then every Markdown page under docs/ (absolute paths)."""
    pages = sorted(glob.glob(osp.join(ROOT, "docs", "**", "*.md"), recursive=True))
    return [osp.join(ROOT, "README.md")] + pages


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def code_block(first_line):
    """The text of the one fenced `python` or `bash` block, in README.md or docs/, whose first line
    starts with `first_line`."""
    found = [
        (path, block)
        for path in doc_files()
        for language, block in FENCED_BLOCK.findall(read(path))
        if language in ("python", "bash") and block.startswith(first_line)
    ]
    where = [osp.relpath(path, ROOT) for path, _ in found]
    assert len(found) == 1, f"{len(found)} code blocks start with {first_line!r} in README.md and docs/: {where}"
    return found[0][1]
