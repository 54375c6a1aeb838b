"""What the learned layer reads of a message: its words with names made general, and context.

Training (``bot.learning``) and scoring (``bot.policy.learned``) both call ``model_input``, so a
message is read the same way by both. Names are replaced by what they are (a member of staff,
the school, the person replied to), so that a model trained on one school's messages reads
another school's: it learns "__staff__ is useless", not "Mr Fraser is useless".
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property, lru_cache

from bot.policy.context import MessageContext, find_phone_numbers, phone_key
from bot.policy.normalise import Kind, NormalisedText
from bot.policy.patterns import PhraseSet

STAFF = "__staff__"
SCHOOL = "__school__"
ADDRESSEE = "__addressee__"
MENTION = "__mention__"
NUMBER = "__num__"
PHONE = "__phone__"
PUBLIC_CONTACT = "__public_contact__"
"""The school's own office number or address, which anyone may share."""
EMAIL = "__email__"
URL = "__url__"
CAPTION = "__caption__"
PLACEHOLDER_PREFIX = "__"

CHAR_SIZES = (2, 3, 4, 5)
_KEPT_PUNCT = frozenset({"?", "!"})
MODEL_HEAD, MODEL_TAIL = 240, 80
"""Words the model reads of a long message: its beginning and its end (about 1,500 characters
in all, more than nearly any chat message). The word rules read all of it; this bounds what a
pasted essay costs the model, and a rant usually says its worst at one end or the other."""
MAX_GRAM_WORD = 32
"""A "word" longer than this is no word: its character n-grams are not read."""
REPLY_CHARS, REPLY_WORDS = 600, 60
"""What the model reads of the message replied to: its beginning, enough to know what is being
joined or answered ("count me in" to a petition against a teacher, or to the cake sale)."""
REPLY_PREFIX = "r:"


@lru_cache(maxsize=1 << 16)
def char_grams(word: str) -> tuple[str, ...]:
    """The character 2- to 5-grams of ``word`` padded with spaces (words recur: cached)."""
    if len(word) > MAX_GRAM_WORD:
        return ()
    padded = f" {word} "
    return tuple(
        padded[start : start + size]
        for size in CHAR_SIZES
        for start in range(len(padded) - size + 1)
    )


@dataclass(frozen=True)
class ModelInput:
    words: tuple[str, ...]
    """The message's words as the model reads them, placeholders for names."""
    context: tuple[str, ...]
    """Signals that are not words: a reply to a parent or to staff, staff addressed, media."""
    replied: tuple[str, ...] = ()
    """The words of the message replied to (its beginning), read the same way."""

    @cached_property
    def word_features(self) -> list[str]:
        """Unigrams and bigrams of the words, the context signals, then unigrams and bigrams of
        the message replied to (marked as such)."""
        words = self.words
        features = list(words)
        features.extend(f"{a} {b}" for a, b in itertools.pairwise(words))
        features.extend(self.context)
        replied = self.replied
        features.extend(REPLY_PREFIX + word for word in replied)
        features.extend(f"{REPLY_PREFIX}{a} {b}" for a, b in itertools.pairwise(replied))
        return features

    @cached_property
    def char_features(self) -> list[str]:
        """Character 2- to 5-grams within each word padded with spaces (placeholders skipped),
        which carry misspellings, inflections and disguises the word list never saw."""
        features: list[str] = []
        for word in self.words:
            if not word.startswith(PLACEHOLDER_PREFIX):
                features.extend(char_grams(word))
        return features

    def word_origins(self) -> dict[str, list[str]]:
        """Each word (once) with the features it gives rise to: the word, its character
        n-grams and the bigrams it starts, to say which words weighed most."""
        words = self.words
        out: dict[str, list[str]] = {}
        for index, word in enumerate(words):
            features = out.get(word)
            if features is None:
                features = out[word] = [word]
                if not word.startswith(PLACEHOLDER_PREFIX):
                    features.extend(char_grams(word))
            if index + 1 < len(words):
                features.append(f"{word} {words[index + 1]}")
        return out


def model_input(
    ctx: MessageContext, school_names: PhraseSet, reply: NormalisedText | None = None
) -> ModelInput:
    """The words and context of ``ctx``'s message for the learned layer, with the beginning of
    the message it replies to (``reply``, normalised) when there is one."""
    words = _words(ctx.text, ctx, school_names)
    if ctx.message.media:
        words.append(CAPTION)
        words.extend(_words(ctx.captions, None, school_names))
    context = []
    if ctx.replies_to_parent:
        context.append("__reply_to_parent__")
    if ctx.reply_staff is not None or (
        ctx.message.reply_to is not None and ctx.message.reply_to.sender.role == "staff"
    ):
        context.append("__reply_to_staff__")
    if ctx.addresses_staff:
        context.append("__addresses_staff__")
    for media in ctx.message.media:
        context.append(f"__media_{media.kind.lower()}__")
    if len(words) > MODEL_HEAD + MODEL_TAIL:
        words = words[:MODEL_HEAD] + words[-MODEL_TAIL:]
    replied = _words(reply, ctx, school_names, replied=True)[:REPLY_WORDS] if reply else []
    return ModelInput(tuple(words), tuple(dict.fromkeys(context)), tuple(replied))


def _words(
    text: NormalisedText,
    ctx: MessageContext | None,
    school_names: PhraseSet,
    *,
    replied: bool = False,
) -> list[str]:
    """``text`` as the model reads it; ``replied``: it is the message ``ctx`` replies to."""
    tokens = text.tokens
    replaced: dict[int, tuple[int, str]] = {}  # first token -> (last token, placeholder)
    if ctx is not None:
        refs = ctx.school.directory.references(text) if replied else ctx.staff_refs
        for ref in refs:
            replaced[ref.first] = (ref.last, STAFF)
        public = ctx.school.public_numbers
        for found in find_phone_numbers(text.original):
            span = text.span_tokens(found.start(), found.end())
            if span:
                placeholder = PUBLIC_CONTACT if phone_key(found.group()) in public else PHONE
                replaced.setdefault(span.start, (span.stop - 1, placeholder))
    for hit in school_names.find(text):
        replaced.setdefault(hit.first, (hit.last, SCHOOL))
    addressee = None if replied else _replied_first_name(ctx)
    directory = ctx.school.directory if ctx is not None else None
    words: list[str] = []
    index = 0
    while index < len(tokens):
        if index in replaced:
            last, placeholder = replaced[index]
            words.append(placeholder)
            index = last + 1
            continue
        token = tokens[index]
        index += 1
        kind = token.kind
        if kind is Kind.WORD or kind is Kind.MASKED:
            word = token.text.removesuffix("'s")
            words.append(ADDRESSEE if word == addressee else token.text)
        elif kind is Kind.MENTION:
            staff = directory is not None and directory.by_handle(token.text) is not None
            words.append(STAFF if staff else MENTION)
        elif kind is Kind.NUMBER:
            words.append(NUMBER)
        elif kind is Kind.EMAIL:
            shared = ctx is not None and token.text in ctx.school.public_emails
            words.append(PUBLIC_CONTACT if shared else EMAIL)
        elif kind is Kind.URL:
            words.append(URL)
        elif kind is Kind.SYMBOL or token.text in _KEPT_PUNCT:
            words.append(token.text)
    return words


def _replied_first_name(ctx: MessageContext | None) -> str | None:
    if ctx is None or ctx.message.reply_to is None or not ctx.replies_to_parent:
        return None
    name = ctx.message.reply_to.sender.name.split()
    return name[0].lower() if name else None
