"""Which HTML extractor keeps more of the real content of Debian documentation, and drops its navigation?

Ground truth: git-doc ships every manual page twice, as HTML and as its AsciiDoc source (``X.html`` + ``X.txt``), so
content recall = the share of the source's words (multiset) found in the extracted text, and precision = the share of
extracted words found in the source (AsciiDoc ``include::`` pulls in text the source file lacks, so precision is a
floor). Code kept = share of ``<pre>`` blocks found verbatim. Navigation: on debian-reference (DocBook, with
"Prev / Up / Home / Next" header and footer tables) we count extracted paragraphs equal to a navigation line.

Run: ``PYTHONPATH=$PWD .venv/bin/python benchmarks/html_extractors.py [--pages N]``; the last line is one JSON object.
Installs ``git-doc`` and ``debian-reference-en`` with apt-get when missing, and the compared extractors (trafilatura,
readability-lxml, justext: ``benchmarks/requirements.txt``) with pip when missing.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from indexing.readers.html import html_layout

GIT_DOC = Path("/usr/share/doc/git-doc")
DEB_REF = Path("/usr/share/doc/debian-reference-common/docs")
_WORD = re.compile(r"[a-z0-9]+")


def ensure_package(package: str, path: Path) -> None:
    """``apt-get install -y package`` when ``path`` is missing (the script needs the real documentation tree)."""
    if not path.exists():
        subprocess.run(["apt-get", "install", "-y", "-q", package], check=True)


def ensure_extractors() -> None:
    """``pip install -r benchmarks/requirements.txt`` (under the repo's constraints) when an extractor is missing."""
    if all(importlib.util.find_spec(m) for m in ("trafilatura", "readability", "justext")):
        return
    here = Path(__file__).resolve().parent
    pip = [sys.executable, "-m", "pip", "install", "-q", "-c", str(here.parent / "constraints.txt")]
    subprocess.run([*pip, "-r", str(here / "requirements.txt")], check=True)


def _words(text: str) -> collections.Counter[str]:
    return collections.Counter(w for w in _WORD.findall(text.lower()) if len(w) > 1)


def _trafilatura(html: str) -> str:
    import trafilatura

    return trafilatura.extract(html, include_tables=True, include_comments=False, favor_recall=True) or ""


def _readability(html: str) -> str:
    import lxml.html
    from readability import Document

    summary = Document(html).summary(html_partial=True)
    return html_layout(summary).text if summary.strip() else lxml.html.fromstring(html).text_content()


def _justext(html: str) -> str:
    import justext

    paragraphs = justext.justext(html.encode(), justext.get_stoplist("English"))
    return "\n\n".join(p.text for p in paragraphs if not p.is_boilerplate)


def _ours(html: str) -> str:
    return html_layout(html).text


def _raw_body(html: str) -> str:
    import lxml.html

    return lxml.html.document_fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", html)).body.text_content()


EXTRACTORS: dict[str, Callable[[str], str]] = {
    "ours (lxml, indexing.readers.html)": _ours,
    "trafilatura 2.3.1 (favor_recall)": _trafilatura,
    "readability-lxml 0.9": _readability,
    "justext 3.0.2": _justext,
    "raw body text (no extraction)": _raw_body,
}


def _pre_blocks(html: str) -> list[str]:
    import lxml.html

    doc = lxml.html.document_fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", html))
    return [pre.text_content().strip() for pre in doc.iter("pre") if pre.text_content().strip()]


def _nav_lines(html: str) -> set[str]:
    import lxml.html

    doc = lxml.html.document_fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", html))
    title = " ".join((doc.findtext(".//title") or "").split())
    lines = set()
    for nav in doc.xpath('//div[@class="navheader" or @class="navfooter"]'):
        lines |= {" ".join(t.split()) for t in nav.itertext() if t.strip()}
        lines |= {img.get("alt", "") for img in nav.iter("img")}
    return {line for line in lines if line and line != title} | {"Prev", "Next", "Home", "Up"}


def _git_doc_scores(extract: Callable[[str], str], pages: list[Path]) -> dict[str, float]:
    recalls, precisions, code_kept, code_total = [], [], 0, 0
    for page in pages:
        html = page.read_text(encoding="utf-8")
        got = extract(html)
        truth, words = _words(page.with_suffix(".txt").read_text(encoding="utf-8")), _words(got)
        common = sum((truth & words).values())
        recalls.append(common / max(1, sum(truth.values())))
        precisions.append(common / max(1, sum(words.values())))
        pres = _pre_blocks(html)
        code_total += len(pres)
        code_kept += sum(1 for pre in pres if pre in got)
    return {
        "content_recall": round(statistics.mean(recalls), 3),
        "precision": round(statistics.mean(precisions), 3),
        "code_kept_verbatim": round(code_kept / max(1, code_total), 3),
    }


def _nav_leaks(extract: Callable[[str], str], pages: list[Path]) -> int:
    leaks = 0
    for page in pages:
        html = page.read_text(encoding="utf-8")
        nav = _nav_lines(html)
        paragraphs = {" ".join(p.split()) for p in re.split(r"\n\s*\n|\n", extract(html))}
        leaks += len(paragraphs & nav)
    return leaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=0, help="git-doc pages to score (0: every page with a .txt)")
    args = parser.parse_args()
    ensure_extractors()
    ensure_package("git-doc", GIT_DOC)
    ensure_package("debian-reference-en", DEB_REF)
    git_pages = sorted(p for p in GIT_DOC.glob("*.html") if p.with_suffix(".txt").exists())
    git_pages = git_pages[: args.pages] if args.pages else git_pages
    ref_pages = sorted(DEB_REF.glob("*.en.html"))
    results = {}
    for name, extract in EXTRACTORS.items():
        started = time.perf_counter()
        scores = _git_doc_scores(extract, git_pages)
        scores["debian_reference_nav_paragraphs"] = _nav_leaks(extract, ref_pages)
        scores["seconds"] = round(time.perf_counter() - started, 1)
        results[name] = scores
        print(f"{name:38s} {scores}")
    print(json.dumps({"benchmark": "html_extractors", "git_doc_pages": len(git_pages),
                      "debian_reference_pages": len(ref_pages), "extractors": results}))  # fmt: skip


if __name__ == "__main__":
    main()
