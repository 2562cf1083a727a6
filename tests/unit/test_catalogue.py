"""The Chinese message catalogue: complete, no fuzzy guesses, and every translation formats.

Templates format every message with ``%`` (Jinja's new-style gettext), so a bare percent sign
in a template message, or a translation whose placeholders differ from its source, would raise
while the page renders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

PO = Path(__file__).parents[2] / "exchange/translations/zh_Hans_CN/LC_MESSAGES/messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)([sd])")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    with PO.open("rb") as f:
        return read_po(f, locale="zh_Hans_CN")


def _messages(catalog: Catalog) -> list[Message]:
    return [m for m in catalog if m.id]


def _texts(message: Message) -> list[str]:
    ids = message.id if isinstance(message.id, tuple) else (message.id,)
    strs = message.string if isinstance(message.string, tuple) else (message.string,)
    return [*ids, *strs]


def _sample(text: str) -> dict[str, object]:
    return {name: (1 if kind == "d" else "x") for name, kind in PLACEHOLDER.findall(text)}


def test_every_message_has_a_chinese_translation(catalog: Catalog) -> None:
    def translated(message: Message) -> bool:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        return all(strings)

    assert [m.id for m in _messages(catalog) if not translated(m)] == []


def test_no_translation_is_left_fuzzy(catalog: Catalog) -> None:
    assert [m.id for m in _messages(catalog) if m.fuzzy] == []


def test_placeholders_agree_between_source_and_translation(catalog: Catalog) -> None:
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]
    assert problems == []


def test_every_template_message_formats_in_both_languages(catalog: Catalog) -> None:
    broken = []
    for message in _messages(catalog):
        if not any(path.startswith("templates/") for path, _ in message.locations):
            continue
        for text in _texts(message):
            try:
                text % _sample(text)
            except (KeyError, TypeError, ValueError) as error:
                broken.append((text, str(error)))
    assert broken == []
