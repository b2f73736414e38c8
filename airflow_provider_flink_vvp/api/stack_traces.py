"""Shortening a failure message that is a Java stack trace, keeping what a reader needs: each exception, the top
frames of each, and the root cause at the end.

Cuts fall between lines, or within a line between words, never inside a run of letters, digits and ``+/=.-_``:
a key or a token the message holds is kept whole or left out whole, so exact-match log masking still finds it.
"""

from __future__ import annotations

import re

#: A frame line of a Java stack trace: ``at ...``, or ``... 12 more``.
_FRAME_LINE = re.compile(r"\s+(?:at\s|\.\.\.\s\d+\smore\s*$)")
#: The frames kept at the top of each run of frames: where its exception was thrown.
FRAMES_KEPT = 3
#: A character of a word, which a cut must not go through: words include keys and tokens.
_WORD = r"[\w+/=.-]"
_WORD_CHARACTER = re.compile(_WORD)
_LAST_WORD = re.compile(_WORD + r"+\Z")
#: Room left for a note of what a cut took out.
_NOTE_CHARS = 40


def shorten_stack_trace(text: str, limit: int) -> str:
    """``text`` if it is at most ``limit`` characters, else shorter than that.

    First each run of frame lines keeps its first :data:`FRAMES_KEPT` (``... [N frames cut]`` says how many
    went), which keeps every ``Caused by:`` line; a line still longer than half the limit keeps its start; if
    the whole is still too long, lines are cut from the middle (``... [N lines cut] ...``), so the first
    exception and the root cause, last, stay.

    :param text: the message.
    :param limit: the most characters to return; at least 200.
    """
    if len(text) <= limit:
        return text
    half = (limit - _NOTE_CHARS) // 2
    lines = [_shortened_line(line, half - _NOTE_CHARS) for line in _folded_frames(text.split("\n"))]
    folded = "\n".join(lines)
    if len(folded) <= limit:
        return folded
    head = _fitting(lines, half)
    tail = _fitting(lines[len(head) :][::-1], half)[::-1]
    return "\n".join([*head, f"... [{len(lines) - len(head) - len(tail)} lines cut] ...", *tail])


def _folded_frames(lines: list[str]) -> list[str]:
    folded: list[str] = []
    run = cut = 0
    for line in lines:
        if _FRAME_LINE.match(line):
            run += 1
            if run > FRAMES_KEPT:
                cut += 1
                continue
        else:
            run = 0
            if cut:
                folded.append(f"\t... [{cut} frames cut]")
                cut = 0
        folded.append(line)
    if cut:
        folded.append(f"\t... [{cut} frames cut]")
    return folded


def _shortened_line(line: str, at_most: int) -> str:
    if len(line) <= at_most:
        return line
    kept = line[:at_most]
    if _WORD_CHARACTER.match(line[at_most]):  # the cut is inside a word: leave the word out whole
        kept = _LAST_WORD.sub("", kept)
    return f"{kept} ... [{len(line) - len(kept)} characters cut]"


def _fitting(lines: list[str], budget: int) -> list[str]:
    """The first of ``lines`` that fit in ``budget`` characters, newlines counted."""
    fitting: list[str] = []
    for line in lines:
        budget -= len(line) + 1
        if budget < 0:
            break
        fitting.append(line)
    return fitting
