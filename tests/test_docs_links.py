"""Every relative link of README.md, DATASETS.md and docs/ (Markdown links and images) reaches an existing file, and a
link with an anchor reaches a heading of that page; every page under docs/ is in the index."""
import os.path as osp
import re
from urllib.parse import unquote

from conftest import ROOT
from docs_text import FENCED_BLOCK, doc_files, docs_pages, read

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")  # [text](target "title"), ![alt](target)
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", flags=re.M)


def prose(text):
    """The text without its fenced code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCED_BLOCK.sub("", text))


def github_anchor(heading):
    """The anchor GitHub gives a heading: its text lower-cased, without the punctuation (letters, digits,
    `_`, `-` and spaces stay; markup is dropped, link text kept), spaces as `-`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    """The anchors of a page's headings; a repeated one gets -1, -2, ... as on GitHub."""
    seen = {}
    for heading in HEADING.findall(FENCED_BLOCK.sub("", read(path))):
        anchor = github_anchor(heading)
        seen[anchor] = seen.get(anchor, -1) + 1
        yield anchor if seen[anchor] == 0 else f"{anchor}-{seen[anchor]}"


def relative_links(path):
    for target in LINK.findall(prose(read(path))):
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not checked
            yield target


def test_anchors_follow_githubs_rule():
    assert github_anchor("Demo (offline, on a laptop CPU)") == "demo-offline-on-a-laptop-cpu"
    assert github_anchor("The toy world's numbers") == "the-toy-worlds-numbers"
    assert github_anchor("`TRAINER.DPT.*` options") == "trainerdpt-options"
    assert github_anchor("Against the authors' code (versus_reference)") == "against-the-authors-code-versus_reference"


def test_every_relative_link_resolves():
    pages = doc_files()
    assert len(pages) > 10  # README.md, DATASETS.md and the docs/ pages are all read
    broken, checked = [], 0
    for page in pages:
        for target in relative_links(page):
            checked += 1
            file_part, _, anchor = target.partition("#")
            linked = osp.normpath(osp.join(osp.dirname(page), unquote(file_part))) if file_part else page
            where = f"{osp.relpath(page, ROOT)}: {target}"
            if not osp.exists(linked):
                broken.append(f"{where} (no such file)")
            elif anchor and linked.endswith(".md") and anchor not in set(anchors(linked)):
                broken.append(f"{where} (no heading with this anchor)")
    assert checked > 30 and not broken, "\n".join(broken)


def test_every_docs_page_is_in_the_index():
    index = osp.join(ROOT, "docs", "README.md")
    linked = {osp.normpath(osp.join(osp.dirname(index), target.partition("#")[0])) for target in relative_links(index)}
    missing = [osp.relpath(page, ROOT) for page in docs_pages() if page != index and page not in linked]
    assert not missing, f"pages under docs/ that docs/README.md does not link: {missing}"
