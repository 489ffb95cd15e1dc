"""Which http:// URLs an HTTPS page makes the browser load or post to (W3C Mixed Content).

Only fetches count: scripts, stylesheets, images (src, srcset, SVG image, legacy background),
media, frames, objects, CSS url()/@import in <style> and style="", and <link> with a rel that
loads (stylesheet, icon, preload, modulepreload, manifest). Navigation targets (<a href>,
rel=canonical/alternate) are never loaded. Every URL is resolved against the document's
<base href>, as browsers do, so a relative URL under an http:// base is mixed content.

The markup is parsed by html5lib (the WHATWG tree builder) as a browser with scripting on does
(so <noscript> content is not loaded), CSS by tinycss2, URLs by ada (the WHATWG URL parser).
<template> content is inert (HTML 4.12.3) and loads nothing, unless it is a declarative shadow root
(shadowrootmode="open"/"closed" on an element that can host one), which is rendered like the page.
External stylesheets are not fetched: their url()s are not seen.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

import ada_url
import html5lib
import tinycss2
import webencodings
from html5lib import _tokenizer, html5parser
from html5lib.constants import tokenTypes

if TYPE_CHECKING:
    from html5lib._tokenizer import _Token

SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
MAX_URLS = 100
MAX_DEPTH = 512  # element nesting analysed, as Chromium's parser caps the tree depth
MAX_ATTRIBUTES = 256  # per tag: html5lib compares each new attribute with every earlier one
MAX_ELEMENTS = 50_000  # elements and comments created: ~0.8 KB and ~15 µs each in html5lib
MAX_TOKEN_STEPS = 50_000  # tokenizer steps inside one token (tag, comment, doctype)
MAX_TOKENS = 250_000  # ~2 µs each through html5lib: 1 MB of NUL characters is a million text tokens
# Tree construction walks the open elements for most tags (scope checks, end tags): 500 nested
# <span> then 1 MB of `</x>` took 20 s. Counted as tokens x depth at the time (~0.2 µs each).
MAX_WORK = 10_000_000  # a real 1 MB page: ~100 000 tokens at depth 10-40
_PARSE_ERROR = tokenTypes["ParseError"]
_BOMS = (b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe")

# element -> attributes holding one URL that the element fetches
_URL_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "script": ("src",),
    "img": ("src",),
    "iframe": ("src",),
    "frame": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "source": ("src",),
    "track": ("src",),
    "body": ("background",),
    "table": ("background",),
    "td": ("background",),
    "th": ("background",),
}
_SRCSET_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "img": ("srcset",),
    "source": ("srcset",),
    "link": ("imagesrcset",),
}
_SVG_FETCHING = {f"{SVG}image", f"{SVG}feImage", f"{SVG}script"}
_LOADING_RELS = {"stylesheet", "icon", "preload", "modulepreload", "manifest"}
# CSS functions whose string arguments are URLs: url("x"), src("x"), image-set("x" 1x)
_CSS_URL_FUNCTIONS = {"url", "src", "image-set", "-webkit-image-set"}
_FORM_ATTRIBUTES: dict[str, str] = {"form": "action", "button": "formaction", "input": "formaction"}
# DOM "attach a shadow root": the HTML elements that may host one, besides autonomous custom elements
_SHADOW_HOSTS = {
    "article",
    "aside",
    "blockquote",
    "body",
    "div",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "main",
    "nav",
    "p",
    "section",
    "span",
}
_RESERVED_CUSTOM_NAMES = {
    "annotation-xml",
    "color-profile",
    "font-face",
    "font-face-src",
    "font-face-uri",
    "font-face-format",
    "font-face-name",
    "missing-glyph",
}


@dataclass
class PageReferences:
    """http:// URLs (absolute, resolved) that the page loads, and that its forms submit to."""

    loaded: list[str] = field(default_factory=list)
    form_actions: list[str] = field(default_factory=list)
    note: str | None = None  # why only part of the page was judged


def _resolve(url: str, base: str) -> str | None:
    """The absolute URL a browser would fetch (WHATWG URL parsing), or None when it is invalid."""
    try:
        return ada_url.join_url(base, url)
    except ValueError:
        return None


def _is_http(url: str | None) -> bool:
    return url is not None and url.startswith("http:")  # ada lower-cases the scheme


def parse_srcset(value: str) -> list[str]:
    """The image URLs of a srcset attribute (HTML "parse a srcset attribute"): a URL is a run of
    non-space characters and may contain commas; descriptors run to the next comma outside parentheses."""
    urls: list[str] = []
    pos, size = 0, len(value)
    spaces = " \t\n\r\f"
    while pos < size:
        while pos < size and (value[pos] in spaces or value[pos] == ","):
            pos += 1
        if pos >= size:
            break
        start = pos
        while pos < size and value[pos] not in spaces:
            pos += 1
        url = value[start:pos]
        if url.endswith(","):
            url = url.rstrip(",")
        else:  # skip the descriptors: up to a comma that is not inside parentheses
            depth = 0
            while pos < size and not (value[pos] == "," and depth == 0):
                depth += {"(": 1, ")": -1}.get(value[pos], 0)
                depth = max(depth, 0)
                pos += 1
        if url:
            urls.append(url)
    return urls


def _css_urls(tokens: Iterable[object]) -> Iterator[str]:
    """Every url() (quoted or not) in a list of tinycss2 component values, nested blocks included."""
    for token in tokens:
        kind = getattr(token, "type", "")
        if kind == "url":
            yield token.value  # type: ignore[attr-defined]
        elif kind == "function":
            args = token.arguments  # type: ignore[attr-defined]
            if token.lower_name in _CSS_URL_FUNCTIONS:  # type: ignore[attr-defined]
                yield from (a.value for a in args if getattr(a, "type", "") == "string")
            yield from _css_urls(args)
        elif kind in ("() block", "[] block", "{} block"):
            yield from _css_urls(token.content)  # type: ignore[attr-defined]


def stylesheet_urls(css: str) -> list[str]:
    """URLs a style sheet fetches: @import targets, fonts and images from url() anywhere in it."""
    urls: list[str] = []
    for rule in tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True):
        if rule.type == "at-rule" and rule.lower_at_keyword == "namespace":
            continue  # a namespace URL is a name, never fetched
        if rule.type == "at-rule" and rule.lower_at_keyword == "import":
            first = next((t for t in rule.prelude if t.type not in ("whitespace", "comment")), None)
            if isinstance(first, tinycss2.ast.StringToken):
                urls.append(first.value)
        if rule.type in ("qualified-rule", "at-rule"):
            urls += _css_urls(rule.prelude)
            urls += _css_urls(rule.content or [])
    return urls


def declarations_urls(style: str) -> list[str]:
    """URLs a style="" attribute fetches."""
    return list(_css_urls(tinycss2.parse_component_value_list(style, skip_comments=True)))


def _can_host_shadow_root(tag: str) -> bool:
    """DOM "attach a shadow root" step 2-3: a listed HTML element or a valid custom element name."""
    if tag in _SHADOW_HOSTS:
        return True
    return "-" in tag and tag[:1].isascii() and tag[:1].islower() and tag not in _RESERVED_CUSTOM_NAMES


def _is_live_template(template: Element, parent: Element) -> bool:
    """A declarative shadow root (HTML "insert an HTML element for a template start tag"): its
    content becomes the parent's shadow tree and loads like the page. Any other template is inert."""
    mode = (template.get("shadowrootmode") or "").lower()  # enumerated: ASCII case-insensitive
    return mode in ("open", "closed") and isinstance(parent.tag, str) and _can_host_shadow_root(parent.tag)


def _rendered(root: Element, shadow_roots: bool = True) -> Iterator[Element]:
    """The elements in tree order, without the subtree of an inert <template> (html5lib puts
    template contents under the template element, not in a separate document as browsers do).
    With `shadow_roots` False every template subtree is left out: the document's own tree only."""
    stack: list[tuple[Element, Element | None]] = [(root, None)]
    while stack:
        element, parent = stack.pop()
        if element.tag == "template" and not (
            shadow_roots and parent is not None and _is_live_template(element, parent)
        ):
            continue
        yield element
        stack.extend((child, element) for child in reversed(element))


def _base_url(root: Element, document_url: str) -> str:
    """The document base URL: the first <base> with an href in the document's tree (not in a
    template or shadow tree), resolved against the document URL."""
    for element in _rendered(root, shadow_roots=False):
        if element.tag != "base":
            continue
        href = element.get("href")
        if href is not None:
            return _resolve(href, document_url) or document_url
    return document_url


def _loaded_urls(element: Element) -> Iterator[str]:
    """Raw URL strings this one element makes the browser fetch (unresolved)."""
    tag = element.tag if isinstance(element.tag, str) else ""
    for attribute in _URL_ATTRIBUTES.get(tag, ()):
        if element.get(attribute):
            yield element.get(attribute, "")
    for attribute in _SRCSET_ATTRIBUTES.get(tag, ()):
        yield from parse_srcset(element.get(attribute, ""))
    if tag == "input" and (element.get("type") or "").strip().lower() == "image" and element.get("src"):
        yield element.get("src", "")
    if tag == "link":
        rels = {r.lower() for r in (element.get("rel") or "").split()}
        if rels & _LOADING_RELS and element.get("href"):
            yield element.get("href", "")
    if tag in _SVG_FETCHING:  # SVG 2 href wins over SVG 1.1 xlink:href
        href = element.get("href") or element.get(XLINK_HREF)
        if href:
            yield href
    if tag in ("style", f"{SVG}style") and element.text:
        yield from stylesheet_urls(element.text)
    if element.get("style"):
        yield from declarations_urls(element.get("style", ""))


def _form_action(element: Element, document_url: str, base: str) -> str | None:
    """Where this form (or submit button's formaction) posts, resolved; None if not a form control."""
    tag = element.tag if isinstance(element.tag, str) else ""
    attribute = _FORM_ATTRIBUTES.get(tag)
    if attribute is None or element.get(attribute) is None:
        return None
    action = element.get(attribute, "")
    if not action.strip():  # an empty action submits to the document's own URL (HTML form submission)
        return document_url
    return _resolve(action, base)


def _add(bucket: list[str], url: str | None) -> None:
    if url is not None and _is_http(url) and url not in bucket and len(bucket) < MAX_URLS:
        bucket.append(url)


# html5lib restarts a parse with this when a <meta charset> changes the encoding (not in its stubs).
_REPARSE: type[Exception] = html5parser._ReparseException  # type: ignore[attr-defined]  # noqa: SLF001


class _Cut(Exception):
    """The page costs more than the budget: analyse what was parsed so far."""


class _BudgetedTokenizer(_tokenizer.HTMLTokenizer):
    """html5lib's tokenizer, bounded in time whatever the page. Its cost is linear except inside one
    token: each attribute is compared with all earlier ones of its tag (120 KB of `<a ` took minutes),
    and names, comments and values grow one `+=` at a time (quadratic). So a tag may have at most
    MAX_ATTRIBUTES attributes, a token at most MAX_TOKEN_STEPS tokenizer steps, a page at most
    MAX_TOKENS tokens and MAX_WORK tokens x depth, and the clock is read every few hundred steps
    (tree construction of the tokens yielded is timed with them). Parse errors are dropped here:
    the tree does not need them."""

    deadline = float("inf")

    def __iter__(self) -> Iterator[_Token]:
        self.tokenQueue: deque[_Token] = deque()
        steps = in_token = tokens = work = 0
        open_elements = self.parser.tree.openElements
        while self.state():
            steps += 1
            in_token += 1
            if in_token > MAX_TOKEN_STEPS:
                raise _Cut(f"a tag, comment or attribute longer than {MAX_TOKEN_STEPS} parser steps")
            if not steps % 256 and time.monotonic() > self.deadline:
                raise _Cut("the page took too long to parse")
            self.stream.errors.clear()  # parse errors change nothing in the tree: never yielded
            while self.tokenQueue:
                token = self.tokenQueue.popleft()
                if token["type"] != _PARSE_ERROR:
                    in_token = 0
                    tokens += 1
                    work += len(open_elements)
                    if tokens > MAX_TOKENS:
                        raise _Cut(f"more than {MAX_TOKENS} tags, comments and text runs")
                    if work > MAX_WORK:
                        raise _Cut(f"more than {MAX_WORK} tags x nesting depth")
                    yield token

    def _count_attributes(self) -> None:
        if self.currentToken is not None and len(self.currentToken["data"]) >= MAX_ATTRIBUTES:
            raise _Cut(f"a tag with more than {MAX_ATTRIBUTES} attributes")

    # the two states that start a new attribute
    def beforeAttributeNameState(self) -> bool:  # noqa: N802 - html5lib's name
        self._count_attributes()
        return super().beforeAttributeNameState()

    def afterAttributeNameState(self) -> bool:  # noqa: N802 - html5lib's name
        self._count_attributes()
        return super().afterAttributeNameState()


class _BudgetedTreeBuilder(html5lib.treebuilders.getTreeBuilder("etree")):  # type: ignore[misc]
    """The etree builder with a depth cap and an element cap. html5lib's tree construction costs
    O(elements x depth): a page of nested tags from an untrusted server could hold the probe for
    hours (browsers cap the depth too, Chromium at 512); and each element costs ~0.8 KB, so 1 MB
    of `<a>` took 4 s and 250 MB."""

    created = 0

    def reset(self) -> None:
        super().reset()
        self.created = 0

    def _check(self) -> None:
        self.created += 1
        if len(self.openElements) > MAX_DEPTH:
            raise _Cut(f"elements nested deeper than {MAX_DEPTH}")
        if self.created > MAX_ELEMENTS:
            raise _Cut(f"more than {MAX_ELEMENTS} elements")

    def createElement(self, token: dict) -> object:  # type: ignore[type-arg]  # noqa: N802 - html5lib's name
        self._check()
        return super().createElement(token)

    def insertElementNormal(self, token: dict) -> object:  # type: ignore[type-arg]  # noqa: N802 - html5lib's name
        self._check()
        return super().insertElementNormal(token)

    def insertComment(self, token: dict, parent: object = None) -> None:  # type: ignore[type-arg]  # noqa: N802 - html5lib's name
        self._check()
        super().insertComment(token, parent)


class _BudgetedParser(html5lib.HTMLParser):
    def __init__(self, deadline: float) -> None:
        super().__init__(tree=_BudgetedTreeBuilder, namespaceHTMLElements=False)
        self.deadline = deadline

    def parseError(self, errorcode: str = "", datavars: object = None) -> None:  # noqa: N802 - html5lib's name
        """Parse errors are not kept: html5lib would store each one with its line and column
        (1 MB of NUL characters: a million of them, 290 MB and seconds of CPU)."""

    def _parse(
        self,
        stream: object,
        innerHTML: bool = False,  # noqa: N803 - html5lib's name
        container: str = "div",
        scripting: bool = False,
        **kwargs: object,
    ) -> None:
        """html5lib's own _parse (1.1), with the budgeted tokenizer."""
        self.innerHTMLMode, self.container, self.scripting = innerHTML, container, scripting
        tokenizer = _BudgetedTokenizer(stream, parser=self, **kwargs)  # type: ignore[call-overload]
        tokenizer.deadline = self.deadline
        self.tokenizer = tokenizer
        self.reset()
        try:
            self.mainLoop()
        except _REPARSE:  # a <meta charset> changed the encoding: once more
            self.reset()
            self.mainLoop()


def _parse(html: str | bytes, deadline: float, transport_encoding: str | None) -> tuple[Element, str | None]:
    """The document tree as a browser with scripting on builds it (<noscript> content is not
    loaded), and why it is partial, if it is. Bytes are decoded as browsers do (BOM, then the
    Content-Type charset, then <meta>, else windows-1252), WHATWG encoding labels only."""
    parser = _BudgetedParser(deadline)
    options = (
        {"transport_encoding": transport_encoding, "useChardet": False} if isinstance(html, bytes) else {}
    )
    try:
        root, note = parser.parse(html, scripting=True, **options), None
    except _Cut as cut:
        root, note = parser.tree.getDocument(), f"{cut}: analysed up to that point only"
    return (root if root is not None else Element("html")), note


def _decodes_to_nothing(body: str | bytes, transport_encoding: str | None) -> bool:
    """A charset that the WHATWG Encoding Standard maps to "replacement" (ISO-2022-KR, HZ...) shows
    one U+FFFD: the browser loads nothing. A BOM still wins over it."""
    if not isinstance(body, bytes) or transport_encoding is None or body.startswith(_BOMS):
        return False
    encoding = webencodings.lookup(transport_encoding)
    return encoding is not None and encoding.name == "replacement"


def insecure_references(
    html: str | bytes, document_url: str, budget_s: float = 10.0, transport_encoding: str | None = None
) -> PageReferences:
    """The http:// loads and form targets of an HTML page served from `document_url` (text, or
    bytes with the Content-Type charset label, if any); `note` says when only part of the page
    could be judged. The parse and the analysis of what was parsed take `budget_s` each at most."""
    if _decodes_to_nothing(html, transport_encoding):
        return PageReferences()
    root, note = _parse(html, time.monotonic() + budget_s, transport_encoding)
    deadline = time.monotonic() + budget_s  # what was parsed, even when the parse was cut, is judged
    base = _base_url(root, document_url)
    found = PageReferences(note=note)
    for count, element in enumerate(_rendered(root)):
        if not count % 256 and time.monotonic() > deadline:
            found.note = found.note or "the page took too long to analyse: analysed up to that point only"
            break
        try:
            raws = list(_loaded_urls(element))
        except RecursionError:
            found.note = found.note or f"CSS nested too deeply in a <{element.tag}>: not analysed"
            raws = []
        for raw in raws:
            if raw.strip():
                _add(found.loaded, _resolve(raw, base))
        _add(found.form_actions, _form_action(element, document_url, base))
    return found
