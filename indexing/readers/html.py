"""HTML -> :class:`~indexing.readers.blocks.Layout`: the main content only, as a reader sees it.

Contract: navigation, headers, footers, breadcrumbs, tables of contents, scripts and styles are removed (HTML5
``nav``/``footer``/``aside``, ``role="navigation"``, and ``class``/``id`` names such as ``navheader``, ``navfooter``,
``breadcrumb``, ``toc``, ``sidebar``, ``footer`` — DocBook's "Prev Up Home Next" tables and AsciiDoc's "Last updated"
footer among them); when the page marks its main content (``<main>``, ``role="main"``, one ``<article>``) only that
is read. Headings become section titles, ``<pre>`` is kept verbatim, paragraphs are re-flowed, a table row becomes one
paragraph of cells joined by `` | ``, images contribute nothing. A definition list's entries (``<dt>`` terms and their
``<dd>`` descriptions: a man page's options) are recorded as entries, so the chunker keeps a term with its description
and gives a chunk that starts inside a description its term. Measured against trafilatura, readability-lxml and jusText
on the Debian git-doc and debian-reference pages (``benchmarks/html_extractors.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from indexing.readers.blocks import Block, Layout, assemble, code, lead, paragraph, reflow

_DROP_TAGS = frozenset(
    {"script", "style", "noscript", "template", "svg", "head", "nav", "footer", "aside", "form", "button",
     "iframe", "object", "img", "map", "select", "input", "textarea"}
)  # fmt: skip
_BOILERPLATE = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|navheader|navfooter|navigation|breadcrumbs?|sidebar|menu|toc|toctitle|skip|"
    r"footer|footer-text|cookie|banner|pagination)(?:$|[\s_-])",
    re.IGNORECASE,
)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = frozenset(
    {"p", "div", "li", "dt", "dd", "blockquote", "section", "article", "main", "body", "ul", "ol", "dl", "table",
     "tbody", "thead", "tfoot", "caption", "figure", "figcaption", "address", "hr", "br", "center", "details",
     "summary", "header"}
)  # fmt: skip


def _is_boilerplate(el: object) -> bool:
    get = getattr(el, "get", None)
    if get is None:
        return False
    if (get("role") or "").lower() in {"navigation", "banner", "contentinfo", "search"}:
        return True
    return bool(_BOILERPLATE.search(get("class") or "") or _BOILERPLATE.search(get("id") or ""))


def _strip_boilerplate(root: object) -> None:
    drop = [
        el
        for el in root.iter()  # type: ignore[attr-defined]
        if not isinstance(el.tag, str) or el.tag.lower() in _DROP_TAGS or _is_boilerplate(el)
    ]
    for el in drop:
        if el.getparent() is not None:
            el.drop_tree()


def _main_root(body: object) -> object:
    """The element holding the main content: ``<main>`` / ``role=main`` / the only ``<article>``, else the body."""
    mains = body.xpath('.//main | .//*[@role="main"]')  # type: ignore[attr-defined]
    if mains:
        return mains[0]
    articles = body.xpath(".//article")  # type: ignore[attr-defined]
    return articles[0] if len(articles) == 1 else body


class _Walker:
    """Depth-first walk collecting blocks; inline text accumulates until the next block boundary."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._buf: list[str] = []
        self._entries = 0  # definition-list entries seen
        self._entry = 0  # the entry the walk is in (0: none)
        self._term = False  # whether it is in the entry's <dt>

    def _append(self, block: Block) -> None:
        self.blocks.append(replace(block, entry=self._entry, term=self._term) if self._entry else block)

    def flush(self) -> None:
        block = paragraph("".join(self._buf))
        self._buf.clear()
        if block is not None:
            self._append(block)

    def add(self, block: Block | None) -> None:
        self.flush()
        if block is not None:
            self._append(block)

    def definitions(self, dl: object) -> None:
        """A ``<dl>``: each ``<dt>`` (consecutive ones together) opens an entry its ``<dd>`` belongs to."""
        self.flush()
        outer = (self._entry, self._term)
        after_term = False
        self._buf.append(dl.text or "")  # type: ignore[attr-defined]
        for child in dl:  # type: ignore[attr-defined]
            tag = child.tag.lower() if isinstance(child.tag, str) else ""
            if tag in ("dt", "dd"):
                self.flush()
                if tag == "dt" and not after_term:
                    self._entries += 1
                self._entry, self._term, after_term = self._entries, tag == "dt", tag == "dt"
            self.walk(child)
            self._buf.append(child.tail or "")
        self.flush()
        self._entry, self._term = outer

    def walk(self, el: object) -> None:
        tag = el.tag.lower() if isinstance(el.tag, str) else ""  # type: ignore[attr-defined]
        if tag in _HEADINGS:
            text = reflow(el.text_content())  # type: ignore[attr-defined]
            self.add(Block("heading", text, _HEADINGS[tag]) if text else None)
        elif tag == "pre":
            self.add(code(el.text_content()))  # type: ignore[attr-defined]
        elif tag == "dl":
            self.definitions(el)
        elif tag == "tr":
            cells = [reflow(c.text_content()) for c in el if isinstance(c.tag, str)]  # type: ignore[attr-defined]
            self.add(paragraph(" | ".join(c for c in cells if c)))
        else:
            block_level = tag in _BLOCKS
            if block_level:
                self.flush()
            self._buf.append(el.text or "")  # type: ignore[attr-defined]
            for child in el:  # type: ignore[attr-defined]
                self.walk(child)
                self._buf.append(child.tail or "")
            if block_level:
                self.flush()


def _title(doc: object) -> str | None:
    found = doc.xpath("//title")  # type: ignore[attr-defined]
    return (reflow(found[0].text_content()) or None) if found else None


def _meta_description(doc: object) -> str | None:
    found = doc.xpath('//meta[translate(@name, "DESCRIPTION", "description")="description"]/@content')  # type: ignore[attr-defined]
    return lead(str(found[0])) if found else None


def html_layout(html: str) -> Layout:
    """Extract the main content of an HTML page (see the module contract). ``title`` from ``<title>``, ``description``
    from ``<meta name="description">`` when the page has one (else the lead paragraph)."""
    import lxml.html

    if not html.strip():
        return Layout(text="")
    html = re.sub(r"^\s*<\?xml[^>]*\?>", "", html)  # lxml refuses str input with an encoding declaration
    doc = lxml.html.document_fromstring(html)
    title = _title(doc)
    description = _meta_description(doc)
    body = doc.find("body")
    root = body if body is not None else doc
    _strip_boilerplate(root)
    walker = _Walker()
    walker.walk(_main_root(root))
    walker.flush()
    return assemble(walker.blocks, title=title, description=description)


def iter_text_lines(layout: Layout) -> Iterator[str]:
    """Non-empty lines of a layout's text (a helper for the benchmarks' navigation check)."""
    return (line for line in layout.text.splitlines() if line.strip())


__all__ = ["html_layout"]
