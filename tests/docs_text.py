"""The project's documentation as the tests read it: README.md, DATASETS.md and the pages under docs/.

Tests that run a command or an example of the documentation take its fenced code block from here, by
the block's first line, wherever the block lives; so a block can move between pages without a test
silently reading nothing."""
import glob
import os.path as osp
import re

from conftest import ROOT

FENCED_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.S | re.M)


def docs_pages():
    """Every Markdown page under docs/ (absolute paths)."""
    return sorted(glob.glob(osp.join(ROOT, "docs", "**", "*.md"), recursive=True))


def doc_files():
    """README.md, DATASETS.md, then every page under docs/ (absolute paths)."""
    return [osp.join(ROOT, "README.md"), osp.join(ROOT, "DATASETS.md")] + docs_pages()


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def code_block(first_line):
    """The text of the one fenced `python` or `bash` block of the documentation whose first line
    starts with `first_line`."""
    found = [
        (path, block)
        for path in doc_files()
        for language, block in FENCED_BLOCK.findall(read(path))
        if language in ("python", "bash") and block.startswith(first_line)
    ]
    where = [osp.relpath(path, ROOT) for path, _ in found]
    assert len(found) == 1, f"{len(found)} code blocks start with {first_line!r} in the documentation: {where}"
    return found[0][1]
