"""The guard: differences a sentence embedder blurs, checked on the words themselves.

Embedders place "is aspirin safe for children" and "is aspirin not safe for children" side
by side (cosine ~0.9; GPTCache #694), and "flights from Paris to London" next to "flights
from London to Paris". No threshold on a cosine can tell those apart without refusing the
real paraphrases too. So a semantic hit must also pass these checks on the two last user
turns, and any one refuses it:

- **negation**: the number of negation words differs (``not``, ``no``, ``never``, ``n't``…);
- **numbers**: the numbers, in order, differ (digits, and number words up to the millions);
- **names**: the capitalised words inside a sentence, acronyms and words mixing letters
  and digits (model names, versions, codes), in order, differ;
- **contrast words**: a content word on one side only belongs to a small lexicon of words
  whose swap inverts or redirects a question (man/woman, up/down, buy/sell, before/after…).

What passes is scored by :func:`overlap`, the share of content words (lightly stemmed) the
two share, which the calibrated threshold weighs beside the cosine (``thresholds.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_WORD = re.compile(r"n't|\w+(?:[.,]\d+)*", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?:;])\s+|\n+")
_SPLIT_NT = re.compile(r"(?i)n't\b")
_DIGIT = re.compile(r"\d")


def _split(text: str) -> list[str]:
    return text.split()


NEGATIONS = frozenset(
    _split(
        "not no never none nobody nothing nowhere neither nor without cannot n't nope "
        "hardly barely scarcely"
    )
)

_UNITS = _split(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_TENS = _split("twenty thirty forty fifty sixty seventy eighty ninety")
_ORDINALS = _split("first second third fourth fifth sixth seventh eighth ninth tenth")
NUMBER_WORDS: dict[str, str] = {w: str(i) for i, w in enumerate(_UNITS)}
NUMBER_WORDS |= {w: str(20 + 10 * i) for i, w in enumerate(_TENS)}
NUMBER_WORDS |= {w: f"#{i + 1}" for i, w in enumerate(_ORDINALS)}
NUMBER_WORDS |= {"hundred": "100", "thousand": "1000", "million": "1e6", "billion": "1e9"}
NUMBER_WORDS |= {"dozen": "12", "half": "0.5", "twice": "x2", "double": "x2", "triple": "x3"}
NUMBER_WORDS |= {"once": "x1", "single": "1", "pair": "2", "couple": "2"}

# Words whose swap for one another changes what is asked, though an embedder sees a
# near-synonym: gender and kin, direction and place, time, opposite actions, quantity,
# judgement and degree.
CONTRAST_WORDS = frozenset(
    _split(
        """
        man woman men women boy girl boys girls male female he she him her his hers husband
        wife father mother son daughter brother sister king queen mr mrs ms
        up down above below over under top bottom high low higher lower upper
        inside outside left right north south east west
        before after earlier later past future yesterday tomorrow today tonight morning
        evening start begin stop end finish open close opened closed enter exit arrive leave
        buy sell bought sold lend borrow give take send receive win lose won lost
        add remove insert delete include exclude import export enable disable allow deny
        more less most least many few much little increase decrease rise fall gain loss
        all some none max maximum min minimum last next
        previous best worst better worse good bad wrong true false correct incorrect
        yes positive negative plus minus
        near far behind front ahead day night dark blond black white red blue green yellow
        brown grey gray pink purple orange
        hot cold warm cool wet dry big small large tiny long short tall old new young fast
        slow early late cheap expensive heavy light hard soft easy difficult
        safe dangerous unsafe legal illegal healthy unhealthy possible impossible
        always sometimes often rarely usually seldom
        """
    )
)

# Small words that are often added or dropped in a paraphrase, but contradict each other
# when one side has one and the other its opposite ("jumping on" / "jumping off").
OPPOSITES = (
    frozenset({"on", "off"}),
    frozenset({"in", "out"}),
    frozenset({"into", "out"}),
    frozenset({"onto", "off"}),
    frozenset({"to", "from"}),
    frozenset({"up", "down"}),
    frozenset({"over", "under"}),
    frozenset({"with", "without"}),
)

STOPWORDS = frozenset(
    _split(
        """
        a an the and or but if then so of at by for with about as is are was were be been
        being am do does did doing have has had having i me my we our you your it its they
        them their this that these those there here what which who whom whose when where why
        how can could would should will shall may might must please tell explain show give
        s t just very really also too quite
        """
    )
)


def _words(text: str) -> list[str]:
    return _WORD.findall(_SPLIT_NT.sub(" n't", text))


def _stem(word: str) -> str:
    """A light suffix strip: plurals and -ing/-ed forms meet their base often enough."""
    for suffix in ("ing", "edly", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True)
class Signature:
    """What the guard compares of one text; computed once per text and cached."""

    words: tuple[str, ...]  # lower-case
    negations: int
    numbers: tuple[str, ...]
    names: frozenset[str]  # lower-case words written as names somewhere in the text
    content: frozenset[str]  # stemmed content words
    raw_content: frozenset[str]  # the same, unstemmed


def _number(token: str) -> str | None:
    word = NUMBER_WORDS.get(token.lower())  # "three" and "3" are the same number
    if word is None and not _DIGIT.search(token):
        return None  # most words: no float() to try ("nan" and "inf" are words here)
    try:
        return repr(float((word or token).replace(",", "")))
    except ValueError:
        return word  # "first" -> "#1", "twice" -> "x2"; None: not a number


@lru_cache(maxsize=16_384)
def signature(text: str) -> Signature:
    words: list[str] = []
    negations = 0
    numbers: list[str] = []
    names: set[str] = set()
    content: set[str] = set()
    raw: set[str] = set()
    for sentence in _SENTENCE.split(text):
        for i, word in enumerate(_words(sentence)):
            lower = word.lower()
            words.append(lower)
            if lower in NEGATIONS:
                negations += 1
            num = _number(word)
            if num is not None:
                numbers.append(num)
            elif _DIGIT.search(word) or (word.isupper() and len(word) > 1):
                names.add(lower)  # "GPT4", "v2", "NASA"
            elif word[0].isupper() and i > 0:
                names.add(lower)  # a capital inside a sentence: a name
            if lower not in STOPWORDS and lower not in NEGATIONS and num is None:
                raw.add(lower)
                content.add(_stem(lower))
    return Signature(
        tuple(words),
        negations,
        tuple(numbers),
        frozenset(names),
        frozenset(content),
        frozenset(raw),
    )


def refuses(a: str, b: str) -> str | None:
    """Why a hit between the texts ``a`` and ``b`` is refused, or None when it may be scored."""
    sa, sb = signature(a), signature(b)
    if sa.negations != sb.negations:
        return "negation"
    if sa.numbers != sb.numbers:
        return "numbers"
    # A word written as a name in either text is a name in both ("France", "france"); the
    # names must be the same, in the same order ("from Paris to London").
    names = sa.names | sb.names
    if [w for w in sa.words if w in names] != [w for w in sb.words if w in names]:
        return "names"
    only_a, only_b = sa.raw_content - sb.raw_content, sb.raw_content - sa.raw_content
    if (only_a | only_b) & CONTRAST_WORDS:
        return "contrast word"
    wa, wb = set(sa.words) - set(sb.words), set(sb.words) - set(sa.words)
    if any(wa & pair and wb & pair for pair in OPPOSITES):
        return "contrast word"
    # The same content words with two of them swapped across others: who does what to whom
    # may have changed ("the cheetah runs behind its prey" / "the prey runs behind the
    # cheetah"). Neighbours trading places ("sleeping better" / "better sleep") pass.
    if sa.content == sb.content and _swapped_apart(_order(sa), _order(sb)):
        return "word order"
    return None


def _swapped_apart(a: list[str], b: list[str]) -> bool:
    """Whether two words are in opposite order in ``a`` and ``b`` with others between them."""
    pos_b = {w: i for i, w in enumerate(b)}
    for i, x in enumerate(a):
        for j in range(i + 2, len(a)):
            y = a[j]
            if x in pos_b and y in pos_b and pos_b[x] > pos_b[y]:
                return True
    return False


def _order(sig: Signature) -> list[str]:
    """The content words in the order they first appear, stemmed."""
    seen: list[str] = []
    for w in sig.words:
        stem = _stem(w)
        if w not in STOPWORDS and stem in sig.content and stem not in seen:
            seen.append(stem)
    return seen


def overlap(a: str, b: str) -> float:
    """The share of content words (stemmed) the two texts have in common (Jaccard)."""
    ca, cb = signature(a).content, signature(b).content
    union = ca | cb
    return len(ca & cb) / len(union) if union else 1.0
