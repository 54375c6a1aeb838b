"""Each rule on both sides of its hard cases: what must be flagged and what must not."""

from __future__ import annotations

from typing import Any

import pytest

from bot.policy import PolicyEngine, Role
from bot.policy_files import build_engine
from tests.conftest import CONFIG_DIR, SCHOOL_FILE, message, rules_of

STAFF = Role.STAFF
# Tuesday 24 November 2026, 19:40 in London: a school night, outside working hours.
EVENING = "2026-11-24T19:40:00+00:00"


def case(text: str, expected: list[str], **kwargs: Any) -> Any:
    return pytest.param(text, set(expected), kwargs, id=text[:60])


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    """The word rules alone: these cases pin what the detectors decide. What the learned layer
    adds is measured on the corpus (tests/learning) and in tests/policy/test_learned.py."""
    return build_engine(SCHOOL_FILE, CONFIG_DIR, use_learned=False)


def check(engine: PolicyEngine, text: str, expected: set[str], kwargs: dict[str, Any]) -> None:
    assert rules_of(engine, message(text, **kwargs)) == expected


ABUSE = [
    # Aimed at the fellow parent being replied to or addressed.
    case(
        "you're honestly the most pathetic person in this chat sharon",
        ["abusive-to-parent"],
        reply_to="Sharon Lee",
    ),
    case("shut up lisa nobody cares what you think", ["abusive-to-parent"], reply_to="Lisa Bell"),
    case("ur a vile woman and everyone knows it", ["abusive-to-parent"]),
    case(
        "keep talking about my kid and see what happens, i know where you live",
        ["abusive-to-parent"],
        reply_to="Dan Moss",
    ),
    case(
        "typical of you gemma, always the victim 🙄 pathetic",
        ["abusive-to-parent"],
        reply_to="Gemma Whitfield",
    ),
    case("wow, parent of the year over here 👏👏", ["abusive-to-parent"], reply_to="Kim Oakes"),
    # Obfuscated: asterisks, leetspeak, spacing, zero-width joiners, look-alike letters.
    case("go f*** yourself", ["abusive-to-parent"], reply_to="Tom Hardy"),
    case("you absolute m0r0n, read the letter", ["abusive-to-parent"], reply_to="Jo Ray"),
    case("what an idi0t you are", ["abusive-to-parent"], reply_to="Al Bo"),
    case("y o u   a r e   a   t w a t", ["abusive-to-parent"], reply_to="Al Bo"),
    case("you're such a c\u200bo\u200bw", ["abusive-to-parent"], reply_to="Al Bo"),
    case("you are a s.t.u.p.i.d cow", ["abusive-to-parent"], reply_to="Al Bo"),
    case("уоu аrе а рathetic ѕlаg", ["abusive-to-parent"], reply_to="Al Bo"),
    case("you are an iddddiot", ["abusive-to-parent"], reply_to="Al Bo"),
    # About someone else: staff, pupils, other parents, the school's leadership.
    case(
        "mrs hughes is a lazy cow who cant be bothered to mark anything", ["abusive-about-others"]
    ),
    case("that teacher is a total moron", ["abusive-about-others"]),
    case(
        "jacob's dad is a complete knobhead, shouted at the lollipop lady", ["abusive-about-others"]
    ),
    case("those kids in year 6 are little sh1ts", ["abusive-about-others"]),
    case(
        "the clowns running this school couldn't organise a raffle",
        ["abusive-about-others", "disrepute"],
    ),
    case(
        "you and your little rat of a son can do one",
        ["abusive-to-parent", "abusive-about-others"],
        reply_to="Kirsty Lowe",
    ),
    # Abuse aimed at staff being addressed is abuse about staff, not of a fellow parent.
    case(
        "you're useless",
        ["abusive-about-others", "staff-contact"],
        reply_to="Mr David Okafor",
        reply_role=STAFF,
    ),
    # Not abuse: idioms, swearing at no one, calling oneself names, ordinary uses of words.
    case("omg i'm such an idiot, left the lunchbox on the roof of the car 🤦", []),
    case("this weather is shit, pick up was carnage", []),
    case("bloody hell it's freezing at the gates", []),
    case("i could kill for a coffee after that assembly", []),
    case("the kids absolutely killed it at the concert", []),
    case("the kids murdered that song 😂 proud mum", []),
    case("lol i'll kill him if he loses another jumper", []),
    case("this phonics homework is doing my head in", []),
    case("my son came home doing cow noises all evening 🐄", []),
    case("there was a rat by the bins near reception, worth telling the office", []),
    case("Scunthorpe tournament is on saturday, class 3 need drivers", []),
    case("can someone assess whether the costume needs ears? the class voted", []),
    case("this app is useless, it logged me out again", []),
]

STAFF_CONTACT = [
    case("@mr_okafor is the trip still on?", ["staff-contact"]),
    case("@mr_okafor is the trip still on?", ["staff-contact", "out-of-hours"], sent_at=EVENING),
    case("ok thanks", ["staff-contact"], reply_to="Mrs Sarah Bennett", reply_role=STAFF),
    case("which page??", ["staff-contact"], reply_to="Mr David Okafor", reply_role=Role.UNKNOWN),
    case("Chloe can u let the office know noah will be late", ["staff-contact"]),
    # A name opening a question, with no comma after it.
    case("Mr Okafor is she in today", ["staff-contact"]),
    case("David is the homework due friday?", ["staff-contact"]),
    case("Mr Okafor is the best teacher zara has had", []),
    case("Mrs Patel was brilliant at the assembly", []),
    case("Sarah could you send the invoice over?", ["staff-contact"]),
    case("Mrs Patel is it non uniform tomorrow?", ["staff-contact"]),
    case("morning Miss Hughes! is there PE today?", ["staff-contact"]),
    case("David, quick question about the trip money", ["staff-contact"]),
    case("cheers mr okafor 👍", ["staff-contact"]),
    case("Thanks Mr Reilly for finding the bag!!", ["staff-contact"]),
    case("is it PE tomorrow, Miss Hughes?", ["staff-contact"]),
    case("anyone got mr okafor's number? i'll just text him", ["staff-contact"]),
    case("i'll message Miss Hughes on facebook about it", ["staff-contact"]),
    # Talking about staff in the third person is not contact.
    case("Mr Okafor said the trip is still on 👍", []),
    case("I asked Miss Hughes at pick up and she said books change on fridays", []),
    case("has mrs bennett sent the invoice to anyone yet?", []),
    case("big thank you to Mr Reilly for running football club", []),
    case("Mrs Patel's assembly about kindness was lovely", []),
    case("Miss Hughes has been amazing with bea this term", []),
    case("i've messaged Mr Okafor on the app, no reply yet", []),
    # A first name that is also a parent's, used for the parent being replied to.
    case("Tom's party was brilliant thank you", []),
]

CONFIDENTIAL = [
    case("her number is 07911 123456 if you want to have a go at her", ["confidential-info"]),
    case("fyi maisie's mum's new number is 07700 900456", ["confidential-info"]),
    case(
        "kayla's mum is in rehab apparently, that's why nan's doing pickups", ["confidential-info"]
    ),
    case("don't say anything but miss hughes is pregnant", ["confidential-info"]),
    case(
        "poor lad, he's been diagnosed with adhd and his mum is struggling", ["confidential-info"]
    ),
    case(
        "the Smiths live at 14 Elm Grove if anyone wants to drop the presents round",
        ["confidential-info"],
    ),
    case("rumour is the head has been signed off", ["confidential-info"]),
    case("apparently mr okafor is being investigated for something", ["confidential-info"]),
    case("my complaint got upheld 👀", ["confidential-info"]),
    case("Miss Hughes's mobile is 07700 900999", ["confidential-info"]),
    case("email chloe.hughes@gmail.example if you want her directly", ["confidential-info"]),
    # The sender's own family, the school office, businesses.
    case("my daughter has autism so loud assemblies are hard for her, any tips?", []),
    case("we've got an ehcp meeting next week, fingers crossed", []),
    case("call me on 07700 900111 if you need a lift", []),
    case("the office number is 01632 960000 btw", []),
    case("email office@peartree.example.sch.uk for the form", []),
    case("the surgery number is 0161 496 0999, they do flu jabs", []),
    case("ruby's off with chickenpox so she won't be at the party sorry x", []),
    case("amelia's having her grommets done so she'll be off all week", []),
    case(
        "the way this school treats kids with SEN is a scandal, going to the papers", ["disrepute"]
    ),
    case(
        "i'm starting a petition to get mr okafor sacked, share it on facebook",
        ["harassment-campaign"],
    ),
]

DISREPUTE = [
    case("honestly this school is a disgrace, the way they treat the kids", ["disrepute"]),
    case("Peartree is a shambles from top to bottom", ["disrepute"]),
    case("I'm going to the papers, people need to know what goes on at that school", ["disrepute"]),
    case(
        "the school covered up what happened to my son, they are liars",
        ["disrepute", "abusive-about-others"],
    ),
    case("I'm going to slate them on google reviews tonight", ["disrepute"]),
    case("the head is lying to us about the roof", ["disrepute"]),
    case("does anyone know if the school is doing a christmas jumper day?", []),
    case("the school have been brilliant with the flooding, well done everyone", []),
    case("not happy about the new pick up arrangements, going to speak to the office", []),
    case("bit gutted the workshop was at 2pm, i'll email the office to ask for a recording", []),
]

HARASSMENT = [
    case("let's all email the head every day until she resigns", ["harassment-campaign"]),
    case(
        "i've made a private group to sort out what we do about mr okafor, dm me to get added",
        ["harassment-campaign"],
    ),
    case("everyone share this petition to get miss hughes removed", ["harassment-campaign"]),
    case("let's all sign the card for mrs patel's leaving do!", []),
    case("i've made a separate group for the costume helpers, message me to be added", []),
    case("we're all emailing the council about the crossing, add your name", []),
]

IMAGES = [
    case("sports day pics!", ["images-consent"], media=[("photo", "")]),
    case("look how cute they all were", ["images-consent"], media=[("photo", "")]),
    case("", ["images-consent"], media=[("video", "the whole class singing on stage")]),
    case(
        "screenshot from the class livestream haha", ["images-consent"], media=[("screenshot", "")]
    ),
    case("my little man ready for his first day 🥰", [], media=[("photo", "")]),
    case(
        "found this in the car park, anyone's?",
        [],
        media=[("photo", "a blue water bottle, no people")],
    ),
    case("world book day sorted", [], media=[("photo", "my son alone in his costume")]),
    case("new menu", [], media=[("document", "the spring dinner menu with the class lists")]),
    case("takings so far", [], media=[("screenshot", "spreadsheet of figures only")]),
]


FAMILIES = {
    "abuse": ABUSE,
    "staff contact": STAFF_CONTACT,
    "confidential": CONFIDENTIAL,
    "disrepute": DISREPUTE,
    "harassment": HARASSMENT,
    "images": IMAGES,
}


@pytest.mark.parametrize(
    ("text", "expected", "kwargs"),
    [
        pytest.param(*each.values, id=f"{family}: {each.id}")
        for family, cases in FAMILIES.items()
        for each in cases
    ],
)
def test_rule(engine: PolicyEngine, text: str, expected: set[str], kwargs: dict[str, Any]) -> None:
    check(engine, text, expected, kwargs)


def test_staff_are_not_bound_by_the_parents_code(engine: PolicyEngine) -> None:
    by_role = message("you're all idiots, @mr_okafor", role=STAFF)
    by_name = message("you're all idiots, @mr_okafor", sender="Mr David Okafor")
    assert not engine.classify(by_role).flagged
    assert not engine.classify(by_name).flagged


def test_explanations_cite_the_clause_and_quote_the_evidence(engine: PolicyEngine) -> None:
    verdict = engine.classify(message("no one asked for your f*cking opinion dean",
                                      reply_to="Dean Fowler"))  # fmt: skip
    (explanation,) = verdict.explanations
    assert explanation.clause == "Sending abusive messages to fellow parents/carers"
    assert "f*cking" in explanation.evidence  # quoted as written, not as normalised
    assert verdict.severity is not None
    assert verdict.severity.label == "high"


def test_severity_is_the_most_serious_rule(engine: PolicyEngine) -> None:
    verdict = engine.classify(message("@mr_okafor is the trip on?", sent_at=EVENING))
    assert [str(r) for r in verdict.rules] == ["staff-contact", "out-of-hours"]
    assert verdict.severity is not None
    assert verdict.severity.label == "low"


def test_the_profanity_model_catches_words_the_lexicons_lack(engine: PolicyEngine) -> None:
    lexicons_only = build_engine(SCHOOL_FILE, CONFIG_DIR, use_model=False, use_learned=False)
    msg = message("you jerk", reply_to="Sam Smith")
    assert rules_of(engine, msg) == {"abusive-to-parent"}
    assert rules_of(lexicons_only, msg) == set()
