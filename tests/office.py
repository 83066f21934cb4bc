"""Small Word and OpenDocument files made by their own libraries, for the document tests."""

from __future__ import annotations

import io
from typing import Any


def make_docx() -> bytes:
    """A .docx with a heading, formatted runs, a tab, a table, a hyperlink and a header."""
    import docx
    from docx.oxml.ns import qn
    from docx.oxml.shared import OxmlElement

    doc = docx.Document()
    doc.add_heading("Ein kleiner Titel", 1)
    p = doc.add_paragraph("Das ist ")
    p.add_run("fett").bold = True
    p.add_run(" und das ist ")
    p.add_run("kursiv").italic = True
    p.add_run(" am Ende.\tNach dem Tab")
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), doc.part.relate_to("https://example.org", docx.opc.constants.RELATIONSHIP_TYPE.HYPERLINK,
                                            is_external=True))  # fmt: skip
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "ein Link"
    run.append(text)
    link.append(run)
    linked = doc.add_paragraph("Hier ist ")
    linked._p.append(link)
    table = doc.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Erste Zelle"
    table.cell(0, 1).text = "Zweite Zelle"
    doc.sections[0].header.paragraphs[0].text = "Die Kopfzeile"
    return _saved(doc)


def make_odt() -> bytes:
    """An .odt with a heading, a bold span, a link, a line break, a list and a footnote."""
    from odf.opendocument import OpenDocumentText
    from odf.text import A, H, LineBreak, List, ListItem, Note, NoteBody, NoteCitation, P, Span

    doc = OpenDocumentText()
    bold = _bold_style(doc)
    doc.text.addElement(H(outlinelevel=1, text="Ein kleiner Titel"))
    p = P(text="Das ist ")
    p.addElement(Span(stylename=bold, text="fett"))
    p.addText(" und hier ist ")
    p.addElement(A(href="https://example.org/", text="ein Link"))
    p.addText(".")
    p.addElement(LineBreak())
    p.addText("Eine neue Zeile")
    note = Note(id="n1", noteclass="footnote")
    note.addElement(NoteCitation(text="1"))
    body = NoteBody()
    body.addElement(P(text="Eine Fußnote."))
    note.addElement(body)
    p.addElement(note)
    p.addText(" mit Fußnote.")
    doc.text.addElement(p)
    items = List()
    for words in ("Erster Punkt", "Zweiter Punkt"):
        item = ListItem()
        item.addElement(P(text=words))
        items.addElement(item)
    doc.text.addElement(items)
    return _saved(doc)


def make_pptx() -> bytes:
    """A .pptx with a title slide (title, subtitle with a bold run and a line break) and speaker notes."""
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Ein kleiner Titel"
    body = slide.placeholders[1].text_frame
    body.text = "Der erste Punkt"
    paragraph = body.add_paragraph()
    paragraph.add_run().text = "Das ist "
    bold = paragraph.add_run()
    bold.text = "fett"
    bold.font.bold = True
    paragraph.add_run().text = " und gut."
    paragraph.add_line_break()
    paragraph.add_run().text = "Neue Zeile"
    slide.notes_slide.notes_text_frame.text = "Eine Notiz für den Vortrag"
    return _saved(deck)


def make_odp() -> bytes:
    """An .odp with one slide holding a text box of two paragraphs, one with a bold span."""
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation
    from odf.style import MasterPage, PageLayout
    from odf.text import P, Span

    doc = OpenDocumentPresentation()
    layout = PageLayout(name="Layout")
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="Master", pagelayoutname=layout)
    doc.masterstyles.addElement(master)
    bold = _bold_style(doc)
    page = Page(masterpagename=master)
    frame = Frame(width="20cm", height="10cm", x="1cm", y="1cm")
    box = TextBox()
    box.addElement(P(text="Ein kleiner Titel"))
    p = P(text="Das ist ")
    p.addElement(Span(stylename=bold, text="fett"))
    p.addText(" und gut.")
    box.addElement(p)
    frame.addElement(box)
    page.addElement(frame)
    doc.presentation.addElement(page)
    return _saved(doc)


def make_epub() -> bytes:
    """A small EPUB 3 book: a chapter with a bold word and a link, its navigation, an EPUB 2 table of contents."""
    chapter = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="de" lang="de"><head><title>Kapitel eins</title></head>'
        '<body><h1>Kapitel eins</h1><p>Ein <b>kleiner</b> Hund läuft <a href="zwei.xhtml">weiter</a>.</p></body></html>'
    )
    nav = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml" '
        'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>Inhalt</title></head><body>'
        '<nav epub:type="toc"><ol><li><a href="eins.xhtml">Kapitel eins</a></li></ol></nav></body></html>'
    )
    ncx = (
        '<?xml version="1.0" encoding="UTF-8"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">'
        "<head/><docTitle><text>Ein Buch</text></docTitle><navMap><navPoint id='p1' playOrder='1'>"
        "<navLabel><text>Kapitel eins</text></navLabel><content src='eins.xhtml'/></navPoint></navMap></ncx>"
    )
    opf = (
        '<?xml version="1.0" encoding="UTF-8"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
        'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">x'
        "</dc:identifier><dc:title>Ein Buch</dc:title><dc:language>de</dc:language></metadata><manifest>"
        '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
        '<item id="c1" href="eins.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>'
        '<item id="img" href="bild.png" media-type="image/png"/></manifest>'
        '<spine toc="ncx"><itemref idref="c1"/></spine></package>'
    )
    container = (
        '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr(zipfile.ZipInfo("mimetype"), b"application/epub+zip")  # first and stored
        book.writestr("META-INF/container.xml", container)
        book.writestr("OEBPS/content.opf", opf)
        book.writestr("OEBPS/nav.xhtml", nav)
        book.writestr("OEBPS/eins.xhtml", chapter)
        book.writestr("OEBPS/toc.ncx", ncx)
        book.writestr("OEBPS/bild.png", b"\x89PNG\r\n\x1a\n")
    return buffer.getvalue()


def _bold_style(doc: Any) -> Any:
    """An automatic text style "Fett" (bold) in an odfpy document."""
    from odf.style import Style, TextProperties

    bold = Style(name="Fett", family="text")
    bold.addElement(TextProperties(fontweight="bold"))
    doc.automaticstyles.addElement(bold)
    return bold


def _saved(doc: Any) -> bytes:
    """The bytes of a python-docx, python-pptx or odfpy document, saved as its library writes it."""
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()
