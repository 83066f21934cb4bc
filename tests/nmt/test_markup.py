"""Inline markup through translation: every element comes back once, around the words aligned to
the words it held, nested as it was, whatever order or alignment the translation has."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from nmt.markup import MARKER, Element, Item, Piece, SegmentBuilder, marker, place, plain_text
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
            builder.piece(part[1], spaced=part[1].startswith("br"))
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


def test_an_element_crowded_out_by_its_sibling_gets_a_word_of_its_own() -> None:
    seg = _segment(("open", "b"), "Hallo", "close", " ", ("open", "i"), "Welt", "close")
    # the attention gave both words to "Hallo": <i> takes the last one instead of coming back empty
    assert _html(place(seg, _translated("Hi there world", [0, 0, 0]))) == "<b>Hi there</b> <i>world</i>"
    assert _html(place(seg, _translated("Hello", [0]))) == "<b>Hello</b><i></i>"  # one word: nothing to give


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


# ----- whatever the translation and its alignment, the markup survives -----------------------


@st.composite
def _segments(draw: st.DrawFn) -> tuple[list[object], int]:
    """Builder calls for random text with randomly nested elements and pieces; and its element count."""
    calls: list[object] = []
    depth = count = 0
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["word", "word", "open", "close", "piece", "break"]))
        if kind == "word":
            calls.append(draw(st.sampled_from(["Haus ", "rot ", "und. ", "x", " Garten ", "  "])))
        elif kind == "open":
            calls.append(("open", f"e{count}"))
            depth, count = depth + 1, count + 1
        elif kind == "close" and depth:
            calls.append("close")
            depth -= 1
        elif kind in ("piece", "break"):
            calls.append(("piece", f"br{len(calls)}" if kind == "break" else f"p{len(calls)}"))
    calls += ["close"] * depth
    return calls, count


def _walk_items(items: list[Item], parents: tuple[str, ...], where: dict[str, list], pieces: Counter[int]) -> None:
    """Where each element of the output sits (its ancestors, once per appearance) and how often each piece."""
    for item in items:
        if isinstance(item, Element):
            where.setdefault(item.node, []).append(parents)
            _walk_items(item.items, (*parents, item.node), where, pieces)
        elif isinstance(item, Piece):
            pieces[id(item.node)] += 1


@settings(max_examples=400, deadline=None)
@given(_segments(), st.randoms(use_true_random=False), st.integers(0, 12))
def test_every_element_and_piece_comes_back_once_nested_as_it_was(
    built: tuple[list[object], int], rng: object, extra: int
) -> None:
    calls, _ = built
    segment = _segment(*calls)
    words = segment.text.split()
    # a translation: the source's words shuffled, some dropped, some new, with a random alignment
    target = [w for w in words if rng.random() > 0.2] + ["neu"] * (extra % 4)  # type: ignore[attr-defined]
    rng.shuffle(target)  # type: ignore[attr-defined]
    alignment = [rng.randint(-1, len(words) + 1) for _ in target]  # type: ignore[attr-defined]
    items = place(segment, _translated(" ".join(target), alignment))
    where: dict[str, list] = {}
    pieces: Counter[int] = Counter()
    _walk_items(items, (), where, pieces)
    source_parents: dict[str, tuple[str, ...]] = {}

    def walk(elements: list, parents: tuple[str, ...]) -> None:
        for element in elements:
            source_parents[element.node] = parents
            walk(element.children, (*parents, element.node))

    walk(segment.inlines, ())
    for node, parents in source_parents.items():
        assert where.get(node) == [parents], f"{node}: {where.get(node)}, was once under {parents}"
    assert all(pieces[id(piece)] == 1 for piece in segment.pieces) and sum(pieces.values()) == len(segment.pieces)
    # every letter of the translation, in order: nothing lost, nothing moved
    assert "".join(plain_text(items).split()) == "".join(MARKER.sub("", " ".join(target)).split())
