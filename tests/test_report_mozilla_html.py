"""The HTML report shows what the text and terminal reports already say: each site's Mozilla
server-side TLS profiles (conformant, then the deviations) and, in the handshake simulation table,
the post-quantum hybrid group each browser gets. Built from model objects (no server can be made to
send a `<script>` deviation text, and the hybrid outcomes are combinations a single local server does
not produce at once); the HTML is read with html5lib, as a browser or mail client reads it.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

import html5lib

from auditor.model import (
    AuditReport,
    HandshakeSimulation,
    MozillaConformance,
    MozillaDeviation,
    PostQuantum,
    TargetRef,
    TargetResult,
)
from auditor.reports.html import render_html
from tests import evidence_builders as b

SCRIPT = "<script>alert(1)</script>"


def _text(el: Element) -> str:
    return " ".join("".join(el.itertext()).split())


def _simulations() -> list[HandshakeSimulation]:
    chrome = (
        b.tls()
        .simulations[0]
        .model_copy(
            update={
                "client": "Chrome 131",
                "hybrid_offered": "X25519MLKEM768",
                "hybrid_selected": "X25519MLKEM768",
            }
        )
    )
    firefox = chrome.model_copy(update={"client": "Firefox 133", "hybrid_selected": "X25519"})
    safari = chrome.model_copy(
        update={"client": "Safari 18", "hybrid_offered": None, "hybrid_selected": None}
    )
    edge = chrome.model_copy(
        update={"client": "Edge 131", "hybrid_offered": "SecP256r1MLKEM768", "hybrid_selected": None}
    )  # refused hybrid, RSA fallback: no group at all
    opera = chrome.model_copy(update={"client": "Opera 115", "hybrid_selected": None})  # raw hello failed
    down = HandshakeSimulation(client="Java 8", error="handshake failure", hybrid_offered=None)
    return [chrome, firefox, safari, edge, opera, down]


def _report() -> AuditReport:
    tls = b.tls()
    tls.simulations = _simulations()
    tls.post_quantum = PostQuantum(
        groups={"X25519MLKEM768": None, "SecP256r1MLKEM768": False, "SecP384r1MLKEM1024": False}
    )
    mozilla = [
        MozillaConformance(
            profile="intermediate",
            guideline_version="6.0",
            conformant=True,
            advice=["Mozilla lists X25519MLKEM768 first among its groups"],
        ),
        MozillaConformance(
            profile="modern",
            guideline_version="6.0",
            conformant=False,
            deviations=[
                MozillaDeviation(
                    key="tls_versions",
                    detail="TLS versions ['TLSv1.2'] are supported, but should be rejected.",
                ),
                MozillaDeviation(key="ciphers", detail=f"suite {SCRIPT} is supported"),
            ],
        ),
        MozillaConformance(
            profile="old",
            guideline_version="6.0",
            conformant=None,
            not_judged=["OCSP stapling: not measured"],
        ),
    ]
    target = TargetResult(
        target=TargetRef(url="https://good.test/", host="good.test", port=443, name="shop"),
        started_at=b.NOW,
        duration_s=1.0,
        compliant=True,
        evidence=b.evidence(tls),
        mozilla=mozilla,
    )
    return AuditReport(generated_at=b.NOW, tool_version="test", targets=[target])


def _table_after(tree: Element, heading: str) -> Element:
    """The first <table> after the <h3> saying `heading`."""
    seen = False
    for el in tree.iter():
        if el.tag == "h3" and _text(el) == heading:
            seen = True
        elif seen and el.tag == "table":
            return el
    raise AssertionError(f"no table after the heading {heading!r}")


def _rows(table: Element) -> list[list[Element]]:
    return [[c for c in tr if c.tag in ("td", "th")] for tr in table.iter("tr")]


def test_mozilla_profiles_section_one_row_per_profile() -> None:
    html = render_html(_report())
    tree = html5lib.parse(html, namespaceHTMLElements=False)
    rows = _rows(_table_after(tree, "Mozilla TLS profiles"))
    assert [_text(c) for c in rows[0]] == ["Profile", "Conformant", "Deviations"]
    by_profile = {_text(r[0]): r for r in rows[1:]}
    assert list(by_profile) == ["intermediate 6.0", "modern 6.0", "old 6.0"]
    intermediate, modern, old = by_profile.values()
    assert _text(intermediate[1]) == "yes" and "none" in _text(intermediate[2])
    assert "advice: Mozilla lists X25519MLKEM768 first" in _text(intermediate[2])
    assert _text(modern[1]) == "no"
    assert [_text(li) for li in modern[2].iter("li")] == [
        "tls_versions: TLS versions ['TLSv1.2'] are supported, but should be rejected.",
        f"ciphers: suite {SCRIPT} is supported",  # the server's text, shown as text
    ]
    assert _text(old[1]) == "not judged" and "not judged: OCSP stapling: not measured" in _text(old[2])
    # the deviation's markup is text, never an element; styled like its neighbours (inlined, no <style>)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not [el for el in tree.iter() if el.tag in ("script", "style")]
    assert "background" in (modern[1][0].get("style") or "")


def test_simulation_table_has_a_post_quantum_column() -> None:
    tree = html5lib.parse(render_html(_report()), namespaceHTMLElements=False)
    rows = _rows(_table_after(tree, "Client handshake simulation"))
    assert [_text(c) for c in rows[0]] == ["Client", "Protocol", "Suite", "Group", "post-quantum"]
    got = {_text(r[0]).removesuffix(" (reference)"): _text(r[-1]) for r in rows[1:]}
    assert got == {
        "Chrome 131": "X25519MLKEM768",  # the hybrid it gets
        "Firefox 133": "no",  # offers one, the server picks X25519
        "Safari 18": "not offered",
        "Edge 131": "no",  # the server refuses its hybrid (probe), nothing else to pick
        "Opera 115": "not tested",  # offered, the server accepts hybrids in general, its pick unknown
        "Java 8": "not offered",  # cannot connect: the post-quantum cell is still there
    }
    assert all(len(r) == 5 or any(c.get("colspan") == "3" for c in r) for r in rows[1:])
