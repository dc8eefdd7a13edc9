"""The Gutenberg play parser on inline snippets with known roles and line counts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tasks.shakespeare.parser import (
    PlayFormatError,
    parse_play,
    read_play,
    read_plays,
    strip_stage_directions,
)

TEMPEST = """THE TEMPEST

by William Shakespeare


DRAMATIS PERSONAE

ALONSO, King of Naples
PROSPERO, the right Duke of Milan
BOATSWAIN
MARINERS

SCENE:
The sea, with a Ship; afterwards an Island


ACT 1
SCENE 1
[On a ship at sea; a tempestuous noise of thunder and lightning
heard]

[Enter a SHIPMASTER and a BOATSWAIN severally]

MASTER.
Boatswain!

BOATSWAIN.
Here, master: what cheer?

MASTER.
Good! Speak to the mariners: fall to't yarely, or
we run ourselves aground: bestir, bestir.

[Exit]

BOATSWAIN.
Bring her to try wi' th' maincourse. [A cry within] A
plague upon this howling!

[Re-enter SEBASTIAN, ANTONIO, and GONZALO]

Yet again! What do you here?

SCENE 2. The Island. Before PROSPERO'S cell.

[Enter PROSPERO and MIRANDA]

MIRANDA
If by your art, my dearest father, you have
Put the wild waters in this roar, allay them.

PROSPERO.
Be collected:
No more amazement.

EPILOGUE

[Spoken by PROSPERO]

Now my charms are all o'erthrown,
And what strength I have's mine own;
"""

HAMLET = """HAMLET

PERSONS REPRESENTED.

Ber.

ACT I.

Scene I. Elsinore. A platform before the Castle.

Ber.
Who's there?

Fran.
Nay, answer me: stand, and unfold yourself.

Lady Capulet.
A line.
He.

Fran.
You come most carefully upon your hour.
"""

MIDSUMMER = """A MIDSUMMER NIGHT'S DREAM

ACT V.

THESEUS
Here come the lovers, full of joy and mirth.

[Enter PROLOGUE.]

PROLOGUE
If we offend, it is with our good will.
That you should think, we come not to offend,

HENRY. Come, my lord.

CHORUS.

O for a Muse of fire, that would ascend
The brightest heaven of invention,

SONG.
     I.
   Blow, blow, thou winter wind,

       II.
   Freeze, freeze, thou bitter sky,
"""


def test_a_play_in_capitals_gives_its_roles_and_lines() -> None:
    play = parse_play(TEMPEST, "tempest")
    assert play.roles == {
        "MASTER": [
            "Boatswain!",
            "Good! Speak to the mariners: fall to't yarely, or",
            "we run ourselves aground: bestir, bestir.",
        ],
        # the bracketed cry is cut out of the verse line; the speech interrupted by a
        # stage direction goes on under the same speaker
        "BOATSWAIN": [
            "Here, master: what cheer?",
            "Bring her to try wi' th' maincourse. A",
            "plague upon this howling!",
            "Yet again! What do you here?",
        ],
        # a speaker line without the final full stop
        "MIRANDA": [
            "If by your art, my dearest father, you have",
            "Put the wild waters in this roar, allay them.",
        ],
        "PROSPERO": ["Be collected:", "No more amazement."],
    }
    # the DRAMATIS PERSONAE (BOATSWAIN, MARINERS) are not speech; the epilogue has no speaker
    assert play.unattributed_lines == 2


def test_a_play_in_title_case_with_abbreviated_names() -> None:
    play = parse_play(HAMLET, "hamlet")
    assert play.roles == {
        "BER": ["Who's there?"],
        "FRAN": [
            "Nay, answer me: stand, and unfold yourself.",
            "You come most carefully upon your hour.",
        ],
        "LADY CAPULET": ["A line.", "He."],
    }


def test_prologue_as_speaker_inline_names_alone_names_and_song_stanzas() -> None:
    play = parse_play(MIDSUMMER, "midsummer")
    assert play.roles["PROLOGUE"] == [
        "If we offend, it is with our good will.",
        "That you should think, we come not to offend,",
    ]
    assert play.roles["HENRY"] == ["Come, my lord."]
    # a name on a paragraph of its own speaks the next paragraph
    assert play.roles["CHORUS"] == [
        "O for a Muse of fire, that would ascend",
        "The brightest heaven of invention,",
    ]
    # numbered stanzas are not roles
    assert play.roles["SONG"] == [
        "I.",
        "Blow, blow, thou winter wind,",
        "II.",
        "Freeze, freeze, thou bitter sky,",
    ]
    assert set(play.roles) == {"THESEUS", "PROLOGUE", "HENRY", "CHORUS", "SONG"}


def test_stage_directions_over_lines_and_misprints_are_removed() -> None:
    assert strip_stage_directions(["a [b", "c] d", "{To X] e", "[open", "f"]) == ["a", "d", "e"]
    # an unclosed bracket ends with its paragraph
    assert strip_stage_directions(["[never closed"]) == []


def test_poems_are_skipped_with_one_warning_naming_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "tempest_gut.txt").write_text(TEMPEST)
    poems = [tmp_path / "sonnets_gut.txt", tmp_path / "venus_gut.txt"]
    for poem in poems:
        poem.write_text("THE SONNETS\n\nI\n\nFrom fairest creatures we desire increase,\n")
    with caplog.at_level(logging.DEBUG):
        plays = read_plays([*poems, tmp_path / "tempest_gut.txt"])
    assert [p.name for p in plays] == ["tempest"]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "2 file(s)" in record.getMessage()
    assert all(str(poem) in record.getMessage() for poem in poems)
    assert "not a play" in record.getMessage()
    caplog.clear()
    # ClientApps parse the corpus in every process: they report at DEBUG, not as warnings.
    with caplog.at_level(logging.DEBUG):
        read_plays(poems, report=logging.DEBUG)
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]


def test_an_unreadable_file_fails_with_its_path(tmp_path: Path) -> None:
    binary = tmp_path / "broken_gut.txt"
    binary.write_bytes(b"ACT I.\n\nKING.\n\xff\xfe not text\n")
    with pytest.raises(PlayFormatError, match=r"broken_gut\.txt"):
        read_play(binary)
    with pytest.raises(PlayFormatError, match=r"missing_gut\.txt"):
        read_play(tmp_path / "missing_gut.txt")
