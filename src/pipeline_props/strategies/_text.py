"""Unicode text for the text columns (ids, category, extra columns), valid and invalid.

The contract keeps text as written (no normalisation, case kept) and refuses
only control characters (U+0000-U+001F, U+007F) and more than 64 code points.
So every other code point is valid, including the ones that readers, case
mapping, normalisation or trimming like to change: those are drawn on purpose,
and :func:`text_labels` names what a value holds so coverage can be measured.
"""

from __future__ import annotations

import unicodedata

from hypothesis import strategies as st

from pipeline_props import contract as c

#: Characters by the trap they set; each value is a short valid fragment.
TEXT_CLASSES: dict[str, tuple[str, ...]] = {
    # upper()/lower() change the length or do not round-trip
    "case mapping": ("\u00df", "\u0130", "\u0131", "\u017f", "\ufb01", "\u212a", "\u03c2",
                     "\u01c5", "\u1e9e"),
    # NFC and NFD differ: precomposed, decomposed and stacked combining marks
    "normalization": ("caf\u00e9", "cafe\u0301", "\u212b", "a\u0308\u0323", "\u1100\u1161",
                      "\uac00", "\u2126"),
    # NFKC differs: ligatures, full-width, superscripts
    "compatibility": ("\ufb01", "\uff21\uff22", "x\u00b2", "\u2460", "\u3372"),
    # not U+0020 or U+0009, so never trimmed
    "space-like": ("\u00a0", "\u2007", "\u202f", "\u3000", "\u200b", "\ufeff", "\u1680",
                   "\u2009", "\u180e"),
    # str.splitlines() and some CSV readers break here; the contract does not
    "line-break-like": ("\u0085", "\u2028", "\u2029"),
    # U+0080-U+009F are not control characters for the contract (only C0 and DEL)
    "C1 control": ("\u0080", "\u0085", "\u009f", "\u009b"),
    "astral": ("\U0001f600", "\U0001d400", "\U00020000", "\U0001f1fa\U0001f1f8",
               "\U000e0041"),
    "format char": ("\u202e", "\u200d", "\u2066", "\u00ad"),
    "comma or quote": (",", '"', '",', "'"),
}

_CONTROL = frozenset([*range(0x20), 0x7F])
_SPACE_LIKE = frozenset("\u200b\ufeff\u180e")
_LINE_BREAK_LIKE = frozenset("\u0085\u2028\u2029")

#: Assigned code points of all planes, controls excluded (they make an id invalid);
#: no surrogates or private use, so a repro stays readable.
TEXT_CHAR = st.characters(codec="utf-8", exclude_categories=("Cs", "Cn", "Co"),
                          exclude_characters="".join(map(chr, sorted(_CONTROL))))
_CLASS_NAMES = st.sampled_from(tuple(TEXT_CLASSES))
_ASCII = st.sampled_from("abcxyzAZ09_-")


def valid_text_id(value: str) -> bool:
    """The contract's rule for order/customer/product ids and category, on a trimmed value."""
    return (
        1 <= len(value) <= c.ID_MAX_CODE_POINTS
        and value == value.strip(" \t")
        and not any(ord(ch) in _CONTROL for ch in value)
    )


def _fit(value: str, fallback: str = "u") -> str:
    value = value.strip(" \t")[: c.ID_MAX_CODE_POINTS]
    return value.strip(" \t") or fallback


@st.composite
def _trap_text(draw: st.DrawFn) -> str:
    """ASCII around one to three trap fragments, e.g. ``a\\u00a0ﬁ``."""
    parts = [draw(_ASCII)]
    for _ in range(draw(st.integers(1, 3))):
        parts.append(draw(st.sampled_from(TEXT_CLASSES[draw(_CLASS_NAMES)])))
        if draw(st.booleans()):
            parts.append(draw(_ASCII))
    return _fit("".join(parts))


@st.composite
def unicode_text_ids(draw: st.DrawFn) -> str:
    """A valid text id that is not plain: trap characters, any Unicode, or 64 code points."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        value = draw(_trap_text())
    elif kind == 1:
        value = _fit(draw(st.text(TEXT_CHAR, min_size=1, max_size=8)))
    else:
        base = _fit(draw(st.one_of(_trap_text(), st.text(TEXT_CHAR, min_size=1, max_size=4))),
                    "x")
        last = draw(st.sampled_from(("z", "\U0001f600", "\u00e9", "\u0301")))
        value = (base * 64)[:63] + last
    assert valid_text_id(value), value
    return value


def lookalike(value: str, how: int) -> str:
    """A different id that a normalising, case-folding or trimming reader would merge."""
    options = (
        unicodedata.normalize("NFD", value),
        unicodedata.normalize("NFC", value),
        value.swapcase(),
        value + "\u00a0",
        value + "\u200b",
        value.casefold(),
    )
    for k in range(len(options)):
        other = options[(how + k) % len(options)][: c.ID_MAX_CODE_POINTS]
        if other != value and valid_text_id(other):
            return other
    return value[:-1] + "\u0301" if len(value) > 1 else value + "\u0301"


#: Control characters by label: each makes a text value INVALID_FORMAT.
CONTROLS: dict[str, tuple[str, ...]] = {
    "NUL": ("\x00",),
    "tab inside": ("\t",),
    "line break inside": ("\n", "\r", "\r\n"),
    "other C0 control": ("\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f"),
    "DEL": ("\x7f",),
}


BAD_TEXT_KINDS: tuple[str, ...] = (*CONTROLS, "65 code points")


@st.composite
def bad_text_ids(draw: st.DrawFn, kind: str | None = None) -> str:
    """A text value made invalid by one control character (a kind of :data:`CONTROLS`)
    or by 65 code points; any of :data:`BAD_TEXT_KINDS` when ``kind`` is None.

    Controls go strictly inside the value: trimming would remove a tab at either
    end and make the value valid again.
    """
    label = kind or draw(st.sampled_from(BAD_TEXT_KINDS))
    base = draw(st.one_of(st.just("ab"), _trap_text(), st.text(TEXT_CHAR, min_size=2,
                                                               max_size=6)))
    base = _fit(base, "ab")
    if len(base) < 2:
        base += "b"
    if label == "65 code points":
        return (base * 65)[:64] + draw(st.sampled_from(("x", "\U0001f600", "\u0301")))
    pos = draw(st.integers(1, len(base) - 1))
    return base[:pos] + draw(st.sampled_from(CONTROLS[label])) + base[pos:]


def text_labels(value: str) -> set[str]:
    """What a valid text value holds: ``text: <class>`` and the 64 code point limit."""
    out: set[str] = set()
    for ch in value:
        cp = ord(ch)
        if (len(ch.upper()) != 1 or len(ch.lower()) != 1 or ch.upper().lower() != ch.lower()
                or ch.lower().upper() != ch.upper()):
            out.add("text: case mapping")
        if unicodedata.combining(ch):
            out.add("text: combining mark")
        if ch in _SPACE_LIKE or (unicodedata.category(ch) == "Zs" and ch != " "):
            out.add("text: space-like")
        if ch in _LINE_BREAK_LIKE:
            out.add("text: line-break-like")
        if 0x80 <= cp <= 0x9F:
            out.add("text: C1 control")
        if cp > 0xFFFF:
            out.add("text: astral")
        if unicodedata.category(ch) == "Cf":
            out.add("text: format char")
        if ch in ',"':
            out.add("text: comma or quote")
    if unicodedata.normalize("NFC", value) != value:
        out.add("text: not NFC")
    elif unicodedata.normalize("NFD", value) != value:
        out.add("text: NFC, NFD differs")
    if unicodedata.normalize("NFKC", value) != unicodedata.normalize("NFC", value):
        out.add("text: compatibility")
    if len(value) == c.ID_MAX_CODE_POINTS:
        out.add("limit: id 64 code points")
        if len(value.encode()) > c.ID_MAX_CODE_POINTS:
            out.add("limit: id 64 code points in more than 64 bytes")
    return out
