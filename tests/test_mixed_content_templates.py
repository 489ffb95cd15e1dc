"""<template> content is inert (WHATWG HTML 4.12.3): it loads nothing, sets no base URL and submits no
form, unless it is a declarative shadow root, which is rendered. The parser is exercised directly on
markup (no server changes what html5lib builds); tests/test_independent_verdicts.py checks it end to end."""

from __future__ import annotations

import pytest

from auditor.scan.mixed_content import insecure_references

PAGE = "https://good.test/"


@pytest.mark.parametrize(
    "body",
    [
        '<template><img src="http://cdn.test/a.png"></template>',
        '<template><div><template><script src="http://cdn.test/a.js"></script></template></div></template>',
        "<template><style>body{background:url(http://cdn.test/bg.png)}</style></template>",
        '<template style="background:url(http://cdn.test/t.png)"><p>x</p></template>',
        '<ul><template shadowrootmode="open"><img src="http://cdn.test/a.png"></template></ul>',  # no shadow host
        '<div><template shadowrootmode="nope"><img src="http://cdn.test/a.png"></template></div>',
        '<font-face><template shadowrootmode="open"><img src="http://cdn.test/a.png"></template></font-face>',  # reserved
    ],
)
def test_inert_template_content_loads_nothing(body: str) -> None:
    found = insecure_references(f"<!doctype html><html><head></head><body>{body}</body></html>", PAGE)
    assert found.loaded == [] and found.note is None


def test_a_template_in_head_loads_nothing_and_its_base_is_not_the_document_base() -> None:
    html = (
        '<!doctype html><html><head><template><base href="http://cdn.test/"><link rel=stylesheet '
        'href="http://cdn.test/x.css"></template></head><body><img src="a.png"></body></html>'
    )
    assert insecure_references(html, PAGE).loaded == []


def test_a_form_inside_a_template_submits_nothing() -> None:
    html = '<body><template><form method=post action="http://good.test/post"></form></template></body>'
    assert insecure_references(html, PAGE).form_actions == []


@pytest.mark.parametrize("host", ["body", "div", "span", "section", "my-widget"])
@pytest.mark.parametrize("mode", ["open", "CLOSED"])
def test_a_declarative_shadow_root_is_rendered_so_it_loads(host: str, mode: str) -> None:
    """HTML "insert an HTML element for a template start tag": shadowrootmode on an element that can
    host a shadow root attaches the content as that element's shadow tree, which loads."""
    html = (
        f'<body><{host}><template shadowrootmode="{mode}"><img src="http://cdn.test/shadow.png">'
        f'<form action="http://good.test/post"></form></template></{host}></body>'
    )
    found = insecure_references(html, PAGE)
    assert found.loaded == ["http://cdn.test/shadow.png"]
    assert found.form_actions == ["http://good.test/post"]


def test_what_surrounds_a_template_is_still_judged_in_order() -> None:
    html = (
        '<body><img src="http://cdn.test/1.png"><template><img src="http://cdn.test/no.png"></template>'
        '<div><img src="http://cdn.test/2.png"></div><img src="http://cdn.test/3.png"></body>'
    )
    assert insecure_references(html, PAGE).loaded == [
        "http://cdn.test/1.png",
        "http://cdn.test/2.png",
        "http://cdn.test/3.png",
    ]
