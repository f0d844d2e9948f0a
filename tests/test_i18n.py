"""The catalogs are read with polib (vuoro/i18n.py): what counts as a translation."""

from __future__ import annotations

from pathlib import Path

from vuoro.i18n import catalog, read_po, translator

PO = '''msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"

msgid "Take a number"
msgstr "Tag et nummer"

#, fuzzy
msgid "Closed"
msgstr "Lukket (gæt)"

msgid "Not yet"
msgstr ""

msgid "Your number is"
msgstr ""
"Dit nummer "
"er"

msgid "{n} waiting"
msgid_plural "{n} waiting"
msgstr[0] "{n} venter"
msgstr[1] "{n} venter"

#~ msgid "Gone"
#~ msgstr "Væk"
'''


def test_only_real_translations_count(tmp_path: Path) -> None:
    (tmp_path / "da.po").write_text(PO, encoding="utf-8")
    assert read_po(tmp_path / "da.po") == {"Take a number": "Tag et nummer", "Your number is": "Dit nummer er"}
    _ = translator(tmp_path, "da")
    assert _("Closed") == "Closed" and _("Not yet") == "Not yet"  # fuzzy and empty fall back to the source
    assert catalog(tmp_path, "sv").messages == {}  # no catalog: the source language
