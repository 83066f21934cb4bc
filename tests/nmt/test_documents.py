"""Files of every format, translated and written back: the same structure (tags, entries, runs),
the file opens in its own library, and bad files get an error naming the problem."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from collections import Counter
from pathlib import Path

import lxml.html
import polib
import pytest
from lxml import etree

from nmt.documents import DocumentError, parse_document, safe_name
from nmt.documents.base import MAX_RATIO
from nmt.documents.lines import wrap_lines
from nmt.documents.office import A
from tests.office import make_docx, make_epub, make_odp, make_odt, make_pptx
from tests.synthetic import shout

DATA = Path(__file__).parent / "data"
LIMIT = 10**6


def _translate(name: str, data: bytes, reverse: bool = False, target: str = "en") -> tuple[list[str], bytes]:
    doc = parse_document(name, data, LIMIT)
    return doc.texts, doc.render(shout(doc.texts, reverse), target)


def _tags(root: etree._Element) -> Counter[str]:
    return Counter(str(e.tag) for e in root.iter() if isinstance(e.tag, str))


# ----- lines ---------------------------------------------------------------------------


def test_text_files_keep_their_lines_and_subtitles_their_timing() -> None:
    assert safe_name("../../etc/passwd") == "passwd" and safe_name("a\x00b.txt") == "ab.txt" and safe_name("") == "file"
    texts, out = _translate("x.txt", b"eins\r\n\r\nzwei drei\n")
    assert texts == ["eins", "zwei drei"] and out == b"EINS\r\n\r\nZWEI DREI\n"
    srt = "1\n00:00:01,000 --> 00:00:02,500\nein Mann\nläuft\n\n2\n00:00:03,000 --> 00:00:04,000\nHund\n"
    texts, out = _translate("film.srt", srt.encode())
    assert texts == ["ein Mann läuft", "Hund"]
    assert out.decode().split("\n")[:4] == ["1", "00:00:01,000 --> 00:00:02,500", "EIN MANN", "LÄUFT"]
    assert wrap_lines("a man is running down the street", 2) == ["a man is running", "down the street"]


# ----- HTML ----------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True], ids=["same-order", "reversed"])
def test_a_page_keeps_every_tag_and_address_and_translates_what_people_read(reverse: bool) -> None:
    data = (DATA / "page.html").read_bytes()
    texts, out = _translate("page.html", data, reverse)
    source, page = lxml.html.document_fromstring(data), lxml.html.document_fromstring(out)
    assert _tags(page) == _tags(source)  # every element once, none made up
    assert out.startswith(b"<!DOCTYPE html>") and page.get("lang") == "en"
    assert [a.get("href") for a in page.iter("a")] == ["https://example.org/Über uns.html?a=1&b=2"]
    assert [i.get("src") for i in page.iter("img")] == ["Bilder/ein Hund.png"]  # spaces and letters as they were
    assert page.find(".//title").text == ("PROGRAMM ZUM HILFE" if reverse else "HILFE ZUM PROGRAMM")
    assert page.find(".//img").get("alt") in ("EIN HUND IM GRAS", "GRAS IM HUND EIN")
    assert page.find(".//a").get("title") in ("ZUR SEITE", "SEITE ZUR")
    assert page.find(".//meta[@name='description']").get("content").isupper()
    assert page.find(".//input[@type='submit']").get("value") == "ABSENDEN"
    assert page.find(".//input[@type='text']").get("placeholder") in ("DEIN NAME", "NAME DEIN")
    # never translated: scripts, styles, preformatted text, inline code, translate="no"
    assert page.find(".//pre").text == "Dieser Text bleibt wie er ist."
    assert 'var greeting = "Hallo Welt";' in page.find(".//script").text
    assert page.find(".//code").text == "ls -l" and page.find(".//kbd").text == "Strg"
    assert page.find(".//span[@translate='no']").text == "GNU Emacs"
    assert b"<!-- navigation -->" in out
    # inline elements hold the words they held
    assert page.find(".//b").text == "WICHTIGER" and page.find(".//em").text == "HILFE"
    assert page.find(".//strong").text == "PUNKT"
    assert sorted(w.strip(".") for w in page.find(".//a").text_content().split()) == ["GUTEN", "LINK"]
    assert not any(t for t in texts if "Dieser Text" in t or "greeting" in t)


def test_the_break_between_two_sentences_stays_between_their_translations() -> None:
    _, out = _translate("page.html", (DATA / "page.html").read_bytes())
    paragraph = lxml.html.document_fromstring(out).find(".//p")
    before = (paragraph.find("br").getprevious().tail or "").strip()
    assert before == "." and "DRÜCKE" in (paragraph.find("br").tail or "")


def test_xhtml_stays_well_formed_xml() -> None:
    data = (DATA / "page.xhtml").read_bytes()
    _, out = _translate("page.xhtml", data, reverse=True)
    root = etree.fromstring(out)  # raises if not well-formed
    assert _tags(root) == _tags(etree.fromstring(data))
    assert out.startswith(b"<?xml") and b"<!DOCTYPE html PUBLIC" in out
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    assert root.find(".//h:img", ns).get("alt") == "BILD EIN"


def test_an_html_fragment_comes_back_as_a_fragment() -> None:
    from nmt.documents.html import fragment

    parsed = fragment('Ein <b>roter</b> Hut &amp; <a href="/x">ein Link</a>')
    out = parsed.render(shout(parsed.texts), "en").decode()
    assert out == 'EIN <b>ROTER</b> HUT &amp; <a href="/x">EIN LINK</a>'
    assert fragment("   ").render([], "en") == b"   "


# ----- gettext -------------------------------------------------------------------------


def test_a_template_becomes_a_catalog_that_msgfmt_accepts(tmp_path: Path) -> None:
    data = (DATA / "app.pot").read_bytes()
    doc = parse_document("app.pot", data, LIMIT)
    assert doc.translated_name("de") == "app.de.po"
    out = doc.render(shout(doc.texts), "de")
    source, catalog = polib.pofile(data.decode()), polib.pofile(out.decode())
    assert [(e.msgctxt, e.msgid) for e in catalog] == [(e.msgctxt, e.msgid) for e in source]
    assert catalog.metadata["Language"] == "de" and "UTF-8" in catalog.metadata["Content-Type"]
    assert catalog.metadata["Plural-Forms"].startswith("nplurals=2")
    for entry in catalog:
        assert "fuzzy" in entry.flags and (entry.msgstr or entry.msgstr_plural)
    plural = next(e for e in catalog if e.msgid_plural)
    assert plural.msgstr_plural == {0: "ONE FILE DELETED", 1: "%D FILES DELETED"}
    usage = next(e for e in catalog if e.msgid.startswith("Usage"))
    assert usage.msgstr.endswith("\n")  # msgfmt wants the msgid's final line break
    assert next(e for e in catalog if e.comment == "Shown in the title bar.").occurrences == [("src/main.c", "10")]
    if shutil.which("msgfmt"):
        (tmp_path / "real.po").write_bytes(parse_document("app.pot", data, LIMIT).render(_keep(doc.texts), "de"))
        check = subprocess.run(["msgfmt", "--check", "-o", "/dev/null", str(tmp_path / "real.po")],
                               capture_output=True, text=True)  # fmt: skip
        assert check.returncode == 0, check.stderr


def _keep(texts: list[str]) -> list:
    """A translator that keeps every placeholder, as the real one does (`nmt.placeholders`)."""
    from nmt.translator import Translation

    return [Translation("Übersetzt: " + t, 0.0) for t in texts]


def test_translated_entries_stay_and_fuzzy_and_empty_ones_are_filled() -> None:
    data = (DATA / "app.de.po").read_bytes()
    texts, out = _translate("app.de.po", data, target="de")
    assert texts == ["Save the file", "Close the window"]
    catalog = polib.pofile(out.decode())
    by_id = {e.msgid: e for e in catalog}
    assert by_id["Open file %s"].msgstr == "Datei %s öffnen" and "fuzzy" not in by_id["Open file %s"].flags
    assert by_id["Save the file"].msgstr == "SAVE THE FILE" and "fuzzy" in by_id["Save the file"].flags
    assert by_id["Close the window"].msgstr == "CLOSE THE WINDOW"
    assert [e.msgid for e in catalog.obsolete_entries()] == ["Old message"]


def test_a_po_file_naming_a_path_is_read_as_text_not_opened() -> None:
    with pytest.raises(DocumentError):
        parse_document("x.po", b"/etc/passwd", LIMIT)


# ----- XLIFF ---------------------------------------------------------------------------


def test_xliff_1_2_units_get_targets_with_their_codes() -> None:
    data = (DATA / "strings.xlf").read_bytes()
    texts, out = _translate("strings.xlf", data, reverse=True)
    assert len(texts) == 2
    root = etree.fromstring(out)
    ns = {"x": "urn:oasis:names:tc:xliff:document:1.2"}
    assert root.find("x:file", ns).get("target-language") == "en"
    units = {u.get("id"): u for u in root.iterfind(".//x:trans-unit", ns)}
    greeting = units["greeting"].find("x:target", ns)
    assert greeting.get("state") == "needs-review-translation"
    assert Counter(c.tag for c in greeting) == Counter(c.tag for c in units["greeting"].find("x:source", ns))
    assert greeting.find("x:g", ns).text == "LIEBE"
    assert units["done"].find("x:target", ns).text == "Done"  # translated already: untouched
    assert units["brand"].find("x:target", ns) is None  # translate="no"
    assert units["empty-target"].find("x:target", ns).text == "SPEICHERN DATEI"
    assert units["greeting"].find("x:note", ns).text == "Shown at start."


def test_xliff_2_0_segments_get_targets_with_their_codes() -> None:
    data = (DATA / "strings.xliff").read_bytes()
    _, out = _translate("strings.xliff", data)
    root = etree.fromstring(out)
    ns = {"x": "urn:oasis:names:tc:xliff:document:2.0"}
    assert root.get("trgLang") == "en"
    segments = list(root.iterfind(".//x:segment", ns))
    target = segments[0].find("x:target", ns)
    assert target.find("x:pc", ns).text == "SPEICHERN" and target.find("x:ph", ns) is not None
    assert segments[0].get("state") == "translated"
    assert segments[1].find("x:target", ns).text == "Done" and segments[2].find("x:target", ns) is None


# ----- office files --------------------------------------------------------------------


def test_a_word_document_keeps_paragraphs_runs_tables_links_and_headers() -> None:
    import docx

    data = make_docx()
    _, out = _translate("report.docx", data, reverse=True)
    source, doc = docx.Document(io.BytesIO(data)), docx.Document(io.BytesIO(out))
    assert len(doc.paragraphs) == len(source.paragraphs)
    body = doc.paragraphs[1]
    assert [r.text for r in body.runs if r.bold] == ["FETT"] and [r.text for r in body.runs if r.italic] == ["KURSIV"]
    assert "\t" in body.text  # the tab stays, between the sentences it parted
    assert doc.paragraphs[0].style.name == source.paragraphs[0].style.name  # heading style kept
    assert [c.text for c in doc.tables[0].rows[0].cells] == ["ZELLE ERSTE", "ZELLE ZWEITE"]
    assert doc.sections[0].header.paragraphs[0].text == "KOPFZEILE DIE"
    w = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    links = doc.paragraphs[2]._p.findall(f"{w}hyperlink")
    assert len(links) == 1 and "".join(t.text for t in links[0].iter(f"{w}t")) == "LINK EIN"
    with zipfile.ZipFile(io.BytesIO(out)) as new, zipfile.ZipFile(io.BytesIO(data)) as old:
        assert new.namelist() == old.namelist()  # every part kept, in order


def test_an_opendocument_keeps_spans_links_breaks_and_notes() -> None:
    from odf import teletype
    from odf.opendocument import load
    from odf.text import A, H, LineBreak, Note, P, Span

    data = make_odt()
    texts, out = _translate("report.odt", data)
    assert "Eine Fußnote." in texts
    doc = load(io.BytesIO(out))
    assert teletype.extractText(doc.getElementsByType(H)[0]) == "EIN KLEINER TITEL"
    spans = doc.getElementsByType(Span)
    assert [(s.getAttribute("stylename"), teletype.extractText(s)) for s in spans] == [("Fett", "FETT")]
    links = doc.getElementsByType(A)
    assert [(a.getAttribute("href"), teletype.extractText(a)) for a in links] == [("https://example.org/", "EIN LINK")]
    assert len(doc.getElementsByType(LineBreak)) == 1 and len(doc.getElementsByType(Note)) == 1
    paragraphs = [teletype.extractText(p) for p in doc.getElementsByType(P)]
    assert "EINE FUSSNOTE." in paragraphs and "ZWEITER PUNKT" in paragraphs
    with zipfile.ZipFile(io.BytesIO(out)) as new:
        assert new.namelist()[0] == "mimetype" and new.getinfo("mimetype").compress_type == zipfile.ZIP_STORED


def test_a_presentation_keeps_slides_runs_breaks_and_notes() -> None:
    from pptx import Presentation

    data = make_pptx()
    texts, out = _translate("talk.pptx", data)
    assert "Eine Notiz für den Vortrag" in texts
    deck = Presentation(io.BytesIO(out))
    slide = deck.slides[0]
    assert slide.shapes.title.text == "EIN KLEINER TITEL"
    paragraph = slide.shapes[1].text_frame.paragraphs[1]
    assert [(r.text, r.font.bold) for r in paragraph.runs] == [
        ("DAS IST ", None), ("FETT", True), (" UND GUT.", None), ("NEUE ZEILE", None)]  # fmt: skip
    assert paragraph.text == "DAS IST FETT UND GUT.\vNEUE ZEILE"  # the line break between the sentences
    assert all(len(r._r.findall(f"{{{A}}}t")) == 1 for r in paragraph.runs)  # DrawingML: one text a run
    assert slide.notes_slide.notes_text_frame.text == "EINE NOTIZ FÜR DEN VORTRAG"


def test_an_opendocument_presentation_translates_its_text_boxes() -> None:
    from odf import teletype
    from odf.opendocument import load
    from odf.text import P, Span

    _, out = _translate("talk.odp", make_odp())
    doc = load(io.BytesIO(out))
    assert [teletype.extractText(p) for p in doc.getElementsByType(P)] == ["EIN KLEINER TITEL", "DAS IST FETT UND GUT."]
    assert [(s.getAttribute("stylename"), teletype.extractText(s)) for s in doc.getElementsByType(Span)] == [
        ("Fett", "FETT")]  # fmt: skip


def test_a_book_translates_its_chapters_contents_and_title_and_keeps_the_rest() -> None:
    data = make_epub()
    _, out = _translate("Buch.epub", data)
    with zipfile.ZipFile(io.BytesIO(out)) as book, zipfile.ZipFile(io.BytesIO(data)) as source:
        assert book.namelist() == source.namelist() and book.namelist()[0] == "mimetype"
        assert book.getinfo("mimetype").compress_type == zipfile.ZIP_STORED
        assert book.read("OEBPS/bild.png") == source.read("OEBPS/bild.png")
        chapter = etree.fromstring(book.read("OEBPS/eins.xhtml"))  # well-formed XHTML
        assert _tags(chapter) == _tags(etree.fromstring(source.read("OEBPS/eins.xhtml")))
        assert chapter.find(".//{*}b").text == "KLEINER" and chapter.find(".//{*}a").get("href") == "zwei.xhtml"
        toc = etree.fromstring(book.read("OEBPS/toc.ncx"))
        assert [t.text for t in toc.iter("{*}text")] == ["EIN BUCH", "KAPITEL EINS"]
        package = etree.fromstring(book.read("OEBPS/content.opf"))
        assert package.find(".//{*}language").text == "en" and package.find(".//{*}title").text == "EIN BUCH"


# ----- bad files -----------------------------------------------------------------------


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


SPREADSHEET = b"application/vnd.oasis.opendocument.spreadsheet"
ODF_TEXT = b"application/vnd.oasis.opendocument.text"
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2"><file><body>
<trans-unit id="1"><source>Hallo &lol4;</source></trans-unit></body></file></xliff>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2"><file><body>
<trans-unit id="1"><source>Hallo &secret; Welt</source></trans-unit></body></file></xliff>"""


BAD_FILES = [
    ("tool.exe", b"MZ\x90\x00", "unsupported file type"),
    ("empty.docx", b"", "is empty"),
    ("notes.txt", b"\xff\xfe\x00", "not UTF-8"),
    ("report.docx", b"this is not a zip file", "not a valid zip"),
    ("report.docx", _zip({"word/document.xml": b"<w:document><w:body>"}), "not well-formed"),
    ("report.docx", _zip({"other.xml": b"<a/>"}), "not a Word document"),
    ("talk.pptx", _zip({"ppt/slides/slide1.xml": b"<a/>"}), "not a PowerPoint presentation"),
    ("book.epub", _zip({"mimetype": b"application/epub+zip"}), "not an EPUB book"),
    ("book.epub", _zip({"META-INF/container.xml": b"<container/>"}), "names no package document"),
    ("talk.odp", _zip({"content.xml": b"<a/>", "mimetype": ODF_TEXT}), "not a presentation"),
    ("report.odt", _zip({"content.xml": b"<a/>", "mimetype": SPREADSHEET}), "not a text document"),
    ("report.docx", _zip({"word/document.xml": b"<a/>", "../../evil": b"x"}), "outside the container"),
    ("bomb.docx", _zip({"word/document.xml": b" " * (MAX_RATIO * 2**16)}), "zip bomb"),
    ("strings.xlf", b"<xliff><file>", "not well-formed"),
    ("strings.xlf", b"<html/>", "not XLIFF"),
    ("page.xhtml", b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><p>', "not well-formed"),
    ("deep.html", b"<p>" + b"<b>x " * 300 + b"</b>" * 300 + b"</p>", "cannot be read whole"),
    ("deep.xlf", b"<xliff>" + b"<g>" * 300 + b"</g>" * 300 + b"</xliff>", "not well-formed"),
    ("app.po", b'msgid "a"\nmsgstr "b"\nmsgid "a"\nmsgstr "c"\nnot po at all "', "not a valid gettext"),
]
"""(name, bytes, what the error says): every driver must refuse these with that message."""


@pytest.mark.parametrize(("name", "data", "message"), BAD_FILES)
def test_a_bad_file_is_an_error_that_names_the_problem(name: str, data: bytes, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        parse_document(name, data, LIMIT)


def test_entities_are_neither_expanded_nor_fetched() -> None:
    for data in (BILLION_LAUGHS, EXTERNAL_ENTITY):
        try:
            texts, out = _translate("strings.xlf", data)
        except DocumentError:
            continue  # refusing the file is as good
        assert len(b"".join(t.encode() for t in texts)) < 1000 and b"root:" not in out


def test_a_file_over_the_character_limit_names_the_limit() -> None:
    with pytest.raises(DocumentError, match="over NMT_MAX_FILE_CHARS=10"):
        parse_document("a.html", b"<p>" + b"Wort " * 10 + b"</p>", 10, limit_name="NMT_MAX_FILE_CHARS")
