"""Reading Project Gutenberg plays into speaking roles and their lines.

The format (see the data set's README): a speech starts with the speaker's
name on a line of its own at the start of a paragraph, in capitals and
usually with a final full stop (``PROSPERO.``; ``THESEUS`` has none), in three
plays in title case (``Ber.``, ``Lady Capulet.``), now and then on the line of
the speech (``PROTEUS. Nod, ay?``); the speech runs to the end of the
paragraph. A play's style (capitals or title case) is the one most of its
speeches open with, so that a place under a scene heading (``Westminster
Abbey.``) is not taken for a name; song stanza numbers (``II.``) are not
names. Stage directions stand in square brackets, possibly over several lines
or inside a verse line, and are removed. Act, scene, prologue, epilogue and
induction headings are not speech, nor is anything before the first of them
(the title and the DRAMATIS PERSONAE).

Two things the format leaves open, decided here:

- A paragraph of text with no name of its own (after a stage direction, or
  after a name standing alone as in ``CHORUS.`` + blank line + verse)
  continues the speech of the last name in the same scene: the speech was
  interrupted by a stage direction, not ended. Text with no name since the
  last heading (an epilogue "[Spoken by PROSPERO]") is counted in
  ``Play.unattributed_lines`` and dropped.
- A "line" is a line of the printed text (a verse line or a wrapped prose
  line) after the stage directions are removed, as in LEAF's preprocessing by
  the paper's authors; a role's lines keep play order.

Role names are upper-cased with the final full stop removed (``Ber.`` ->
``BER``), as LEAF does since its fix for names printed in two casings.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

# ACT I. / ACT FIRST / Act 1. / SCENE 2 / Scene I.--Athens. Not "SCENE:" or "SCENE.--"
# (the setting line under the DRAMATIS PERSONAE).
_ACT_OR_SCENE = re.compile(
    r"^(?:act|scene)\s+(?:[ivxlc]+\b|\d+\b|first|second|third|fourth|fifth)", re.IGNORECASE
)
# PROLOGUE, EPILOGUE, INDUCTION standing alone; followed by verse in the same
# paragraph they are a speaker (the PROLOGUE of Pyramus and Thisbe).
_SECTION = re.compile(r"^(?:THE\s+)?(?:PROLOGUE|EPILOGUE|INDUCTION)\.?$")
_CAPS_WORD = r"[A-Z][A-Z'&\-]*\.?"
_CAPS_NAME = re.compile(rf"^{_CAPS_WORD}(?: {_CAPS_WORD}){{0,4}}$")
_TITLE_WORD = r"[A-Z][A-Za-z'\-]*\.?"
_TITLE_NAME = re.compile(rf"^{_TITLE_WORD}(?: (?:{_TITLE_WORD}|of|and|the|de|du|la|le)){{0,4}}\.$")
_INLINE = re.compile(rf"^({_CAPS_WORD}(?: {_CAPS_WORD}){{0,4}})\.\s+(\S.*)$")
_ROMAN = re.compile(r"^[IVXLC]+$")  # numbered stanzas of a song (II., III.)
_MAX_NAME_LENGTH = 40
_SPACES = re.compile(r"\s+")


class PlayFormatError(ValueError):
    """A file that cannot be read as text; the message names it."""


@dataclass
class Play:
    """The speaking roles of one play, each with its lines in play order."""

    name: str
    roles: dict[str, list[str]] = field(default_factory=dict)
    unattributed_lines: int = 0


def is_section_heading(line: str, *, alone: bool) -> bool:
    """An act or scene heading, or PROLOGUE/EPILOGUE/INDUCTION on a paragraph of its own."""
    return bool(_ACT_OR_SCENE.match(line)) or (alone and bool(_SECTION.match(line)))


def speaker_name(line: str, *, title_case: bool) -> str | None:
    """The role named by a speech heading line, or None if the line is not one.

    ``title_case`` selects the play's style: ``PROSPERO.``/``THESEUS`` or
    ``Ber.``/``Lady Capulet.`` (which must end with a full stop).
    """
    pattern = _TITLE_NAME if title_case else _CAPS_NAME
    name = line.rstrip(".")
    if len(line) > _MAX_NAME_LENGTH or not pattern.match(line) or _ROMAN.match(name):
        return None
    return name.upper()


def split_inline_heading(line: str) -> tuple[str, str] | None:
    """``PROTEUS. Nod, ay?`` -> (``PROTEUS``, ``Nod, ay?``): a name and speech on one line."""
    match = _INLINE.match(line)
    if match is None or _ROMAN.match(match.group(1)) or len(match.group(1)) < 2:
        return None
    return match.group(1).upper(), match.group(2)


def strip_stage_directions(lines: list[str]) -> list[str]:
    """Remove ``[...]`` spans (which may run over several lines) from one paragraph.

    A ``]`` with no ``[`` before it (a misprint such as ``{To FERDINAND]``)
    ends a direction that began at the start of the line. An unclosed ``[``
    ends with the paragraph, so a misprint cannot swallow the rest of a play.
    """
    out: list[str] = []
    depth = 0
    for raw in lines:
        kept: list[str] = []
        for char in raw:
            if char == "[":
                depth += 1
            elif char == "]":
                if depth == 0:
                    kept.clear()
                depth = max(depth - 1, 0)
            elif depth == 0:
                kept.append(char)
        text = _SPACES.sub(" ", "".join(kept)).strip()
        if text:
            out.append(text)
    return out


def _paragraphs(lines: list[str]) -> list[list[str]]:
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line)
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return paragraphs


def _uses_title_case(paragraphs: list[list[str]]) -> bool:
    """Whether more speeches open with ``Ber.`` than with ``BERNARDO.``: the play's style."""
    caps = title = 0
    for paragraph in paragraphs:
        if len(paragraph) > 1:
            caps += speaker_name(paragraph[0], title_case=False) is not None
            title += speaker_name(paragraph[0], title_case=True) is not None
    return title > caps


def parse_play(text: str, name: str) -> Play:
    """Parse one play's text into its roles; a text with no headings gives no roles."""
    play = Play(name=name)
    lines = text.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if is_section_heading(line.strip(), alone=True)),
        len(lines),
    )
    paragraphs = [strip_stage_directions(p) for p in _paragraphs(lines[start:])]
    title_case = _uses_title_case(paragraphs)
    speaker: str | None = None
    for paragraph in paragraphs:
        rest = paragraph
        if rest and is_section_heading(rest[0], alone=len(rest) == 1):
            # The lines after a heading in its paragraph are its place ("Throne.").
            speaker, rest = None, []
        if rest:
            named = speaker_name(rest[0], title_case=title_case)
            inline = None if title_case else split_inline_heading(rest[0])
            if named is not None:
                speaker, rest = named, rest[1:]
            elif inline is not None:
                speaker, rest = inline[0], [inline[1], *rest[1:]]
        if not rest:
            continue
        if speaker is None:
            play.unattributed_lines += len(rest)
        else:
            play.roles.setdefault(speaker, []).extend(rest)
    return play


def read_play(path: Path) -> Play:
    """Parse the play in ``path``; an unreadable or non-UTF-8 file raises naming it."""
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PlayFormatError(f"{path}: cannot read as UTF-8 text ({error})") from error
    return parse_play(text.replace("\x00", ""), path.stem.removesuffix("_gut"))


def read_plays(paths: list[Path], *, report: int = logging.WARNING) -> list[Play]:
    """Parse every file; those with no roles (poems) are skipped, named in one log line.

    ``report`` is that line's level: the ServerApp warns once per run, the
    ClientApps, which parse the same corpus in every process, log it at DEBUG.
    """
    plays, skipped = [], []
    for path in paths:
        play = read_play(path)
        if not play.roles:
            skipped.append(str(path))
            continue
        plays.append(play)
    if skipped:
        logger.log(
            report,
            "skipped %d file(s) with no speaking roles, not a play: %s",
            len(skipped),
            ", ".join(skipped),
        )
    return plays
