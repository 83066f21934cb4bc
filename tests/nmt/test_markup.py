"""Inline markup through translation: every element comes back once, around the words aligned to
the words it held, nested as it was, whatever order or alignment the translation has."""

from __future__ import annotations

from nmt.markup import Element, Item, Piece, SegmentBuilder, marker, place, plain_text
from nmt.translator import Translation


def _segment(*parts: object):
    """parts: str (text), ("open", name), "close", ("piece", name)."""
    builder = SegmentBuilder()
    for part in parts:
        if isinstance(part, str) and part == "close":
            builder.close()
        elif isinstance(part, str):
            builder.text(part)
        elif part[0] == "open":
            builder.open(part[1])
        else:
            builder.piece(part[1], spaced=part[1] == "br")
    return builder.build()


def _html(items: list[Item]) -> str:
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Piece):
            out.append(f"<{item.node}/>")
        else:
            out.append(f"<{item.node}>{_html(item.items)}</{item.node}>")
    return "".join(out)


def _translated(text: str, alignment: list[int] | None) -> Translation:
    return Translation(text, 0.0, word_alignment=alignment)


def test_the_text_collapses_white_space_and_keeps_what_surrounds_it() -> None:
    seg = _segment("\n   Ein  ", ("open", "b"), "kleiner\n", "close", " Test  \n")
    assert seg.text == "Ein kleiner Test" and seg.lead == "\n   " and seg.trail == "  \n"
    assert seg.text[seg.inlines[0].start : seg.inlines[0].end].strip() == "kleiner"


def test_an_element_follows_its_words_to_where_the_translation_puts_them() -> None:
    seg = _segment("Das ", ("open", "b"), "rote", "close", " Haus steht")
    done = place(seg, _translated("The house is red", [0, 2, 3, 1]))
    assert _html(done) == "The house is <b>red</b>"


def test_nesting_is_kept_and_a_child_stays_inside_its_parent() -> None:
    seg = _segment(("open", "a"), "ein ", ("open", "i"), "sehr", "close", " guter", "close", " Satz")
    done = place(seg, _translated("a very good sentence", [0, 1, 2, 3]))
    assert _html(done) == "<a>a <i>very</i> good</a> sentence"
    # the alignment puts the child's word outside its parent: the child is clipped into the parent
    done = place(seg, _translated("sentence a good very", [3, 0, 2, 1]))
    html = _html(done)
    assert html.count("<a>") == 1 and html.count("<i>") == 1
    assert html.index("<a>") < html.index("<i>") < html.index("</i>") < html.index("</a>")


def test_scattered_words_take_the_span_from_first_to_last_and_siblings_never_overlap() -> None:
    seg = _segment(("open", "b"), "eins zwei", "close", " ", ("open", "i"), "drei", "close")
    done = place(seg, _translated("one three two", [0, 2, 1]))
    html = _html(done)
    assert html.count("<b>") == html.count("<i>") == 1
    assert plain_text(done).split() == ["one", "three", "two"]


def test_an_element_without_aligned_words_lands_at_its_relative_place() -> None:
    seg = _segment("Haus ", ("open", "b"), "und", "close", " Garten")
    done = place(seg, _translated("house garden", [0, 2]))
    assert _html(done).count("<b>") == 1 and plain_text(done).split() == ["house", "garden"]
    empty = _segment("Text ", ("open", "a"), "close", "hier")  # an empty anchor
    assert _html(place(empty, _translated("text here", [0, 1]))).count("<a></a>") == 1


def test_pieces_come_back_exactly_once_even_when_the_translation_repeats_or_loses_them() -> None:
    seg = _segment("Drücke ", ("piece", "kbd"), " jetzt")
    assert seg.text == f"Drücke {marker(0)} jetzt"
    assert _html(place(seg, _translated(f"press {marker(0)} now", [0, 1, 2]))) == "press <kbd/> now"
    assert _html(place(seg, _translated(f"{marker(0)} press {marker(0)}", [1, 0, 1]))).count("<kbd/>") == 1
    assert _html(place(seg, _translated("press now", [0, 2]))) == "press now<kbd/>"


def test_a_line_break_parts_words_for_the_model_and_gets_no_spaces_back() -> None:
    seg = _segment("Ende.", ("piece", "br"), "Neu")
    assert seg.text == f"Ende. {marker(0)} Neu"
    assert _html(place(seg, _translated(f"End. {marker(0)} New", [0, 1, 2]))) == "End.<br/>New"


def test_a_stop_the_translation_glued_to_an_elements_last_word_goes_after_it() -> None:
    seg = _segment("auf dem ", ("open", "i"), "Gras", "close", ".")
    assert _html(place(seg, _translated("on the grass.", [0, 1, 2]))) == "on the <i>grass</i>."


def test_without_an_alignment_positions_decide() -> None:
    seg = _segment(("open", "b"), "Ein", "close", " Mann läuft")
    done = place(seg, _translated("A man runs", None))
    assert _html(done) == "<b>A</b> man runs"
    assert isinstance(done[0], Element)
