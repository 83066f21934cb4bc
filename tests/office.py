"""Small Word and OpenDocument files made by their own libraries, for the document tests."""

from __future__ import annotations

import io


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
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def make_odt() -> bytes:
    """An .odt with a heading, a bold span, a link, a line break, a list and a footnote."""
    from odf.opendocument import OpenDocumentText
    from odf.style import Style, TextProperties
    from odf.text import A, H, LineBreak, List, ListItem, Note, NoteBody, NoteCitation, P, Span

    doc = OpenDocumentText()
    bold = Style(name="Fett", family="text")
    bold.addElement(TextProperties(fontweight="bold"))
    doc.automaticstyles.addElement(bold)
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
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


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
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def make_odp() -> bytes:
    """An .odp with one slide holding a text box of two paragraphs, one with a bold span."""
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation
    from odf.style import MasterPage, PageLayout, Style, TextProperties
    from odf.text import P, Span

    doc = OpenDocumentPresentation()
    layout = PageLayout(name="Layout")
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="Master", pagelayoutname=layout)
    doc.masterstyles.addElement(master)
    bold = Style(name="Fett", family="text")
    bold.addElement(TextProperties(fontweight="bold"))
    doc.automaticstyles.addElement(bold)
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
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()
