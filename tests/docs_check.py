"""Reading the Markdown docs for their tests: fenced code blocks, links, and prose figures.

    .venv/bin/python -m tests.docs_check README.md CONTRIBUTING.md   # words, sentences, words per sentence

Words are whitespace-separated tokens of the whole file (what ``wc -w`` counts). Sentences are
counted in the prose only: fenced code blocks, tables, headings and HTML comments are left out; each
paragraph and each list item ends a sentence, and so does ``.``, ``!`` or ``?`` followed by white
space (not after ``e.g.`` / ``i.e.``). Words per sentence = prose words / sentences.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
SENTENCE_END = re.compile(r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<=[.!?])\s+")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+")


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int  # 1-based line of the opening fence

    def __str__(self) -> str:
        return f"```{self.lang} block at line {self.line}"


def code_blocks(path: Path) -> list[Block]:
    text = path.read_text()
    return [Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def prose(text: str) -> list[str]:
    """The prose units (paragraphs and list items), each joined into one line."""
    text = COMMENT.sub("", FENCE.sub("", text))
    units: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("|", "#")):
            if current:
                units.append(current)
            current = []
            continue
        if LIST_ITEM.match(line) and current:
            units.append(current)
            current = []
        current.append(LIST_ITEM.sub("", line, count=1).strip())
    if current:
        units.append(current)
    return [" ".join(unit) for unit in units]


@dataclass(frozen=True)
class Stats:
    words: int
    prose_words: int
    sentences: int

    @property
    def words_per_sentence(self) -> float:
        return self.prose_words / max(self.sentences, 1)


def stats(text: str) -> Stats:
    units = prose(text)
    sentences = [s for unit in units for s in SENTENCE_END.split(unit) if s.split()]
    return Stats(len(text.split()), sum(len(s.split()) for s in sentences), len(sentences))


def local_links(path: Path) -> list[str]:
    """Relative link targets of a Markdown file (no scheme, no in-page anchor)."""
    return [
        t
        for t in LINK.findall(COMMENT.sub("", FENCE.sub("", path.read_text())))
        if ":" not in t.split("#")[0] and not t.startswith("#")
    ]


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file: its headings, slugged, and its ``<a name="...">`` tags."""
    text = COMMENT.sub("", FENCE.sub("", path.read_text()))
    slugs = set(re.findall(r'<a name="([^"]+)">', text))
    for heading in re.findall(r"^#+\s+(.*)$", text, re.MULTILINE):
        slugs.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return slugs


def main(argv: list[str]) -> int:
    for name in argv or ["README.md"]:
        s = stats(Path(name).read_text())
        print(
            f"{name}: {s.words} words, {s.sentences} sentences in {s.prose_words} words of prose, "
            f"{s.words_per_sentence:.1f} words per sentence"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
