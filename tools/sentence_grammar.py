"""English sentences from a small built-in grammar (about 400 words), for synthetic corpora.

Shared by ``make_mini_timit.py`` and ``make_librispeech_corpus.py``.
"""

from __future__ import annotations

import random

PUNCTUATION = ".,?!;:"

NOUNS = [tuple(pair.split("/")) for pair in """
dog/dogs cat/cats house/houses garden/gardens river/rivers boy/boys girl/girls teacher/teachers
farmer/farmers doctor/doctors kitten/kittens button/buttons bottle/bottles table/tables apple/apples
window/windows letter/letters paper/papers book/books coin/coins toy/toys king/kings queen/queens
child/children mouse/mice sheep/sheep fish/fish treasure/treasures garage/garages vision/visions
thief/thieves path/paths mouth/mouths cloud/clouds village/villages judge/judges church/churches
bridge/bridges wagon/wagons yacht/yachts wolf/wolves shoe/shoes watch/watches jacket/jackets
engine/engines voice/voices island/islands mountain/mountains student/students soldier/soldiers
rabbit/rabbits horse/horses pocket/pockets basket/baskets feather/feathers pillow/pillows
ladder/ladders hammer/hammers needle/needles pencil/pencils blanket/blankets kettle/kettles
tiger/tigers monkey/monkeys lawyer/lawyers nurse/nurses pilot/pilots singer/singers captain/captains
oven/ovens cup/cups puzzle/puzzles drum/drums shadow/shadows market/markets orange/oranges
""".split()]  # fmt: skip
MASS_NOUNS = "oil water music sugar butter coffee money weather bread cheese soup milk honey".split()
ADJECTIVES = """big small old young red green yellow purple brown quiet noisy happy angry little gentle
heavy thick thin smooth rough warm cold bright dark clever lazy strange usual famous wooden golden
silver careful hungry thirsty tired busy empty shiny muddy sharp round tall short clean dirty rich
poor proud loyal""".split()
VERBS = [tuple(pair.split("/")) for pair in """
see/saw find/found take/took bring/brought carry/carried push/pushed pull/pulled wash/washed
paint/painted fix/fixed move/moved choose/chose catch/caught throw/threw buy/bought sell/sold hide/hid
lose/lost keep/kept hold/held show/showed measure/measured borrow/borrowed follow/followed
visit/visited watch/watched join/joined enjoy/enjoyed touch/touched judge/judged open/opened
close/closed change/changed thank/thanked bother/bothered fetch/fetched guard/guarded weigh/weighed
build/built
""".split()]  # fmt: skip
ADVERBS = """quickly slowly quietly loudly gently carefully happily yesterday today again early together
outside everywhere later often certainly""".split()
PREPOSITIONS = "near behind under over beside inside across through beyond toward along".split()
NAMES = """John Mary George Susan Thomas Ruth Michael Joyce Charles Judy Peter Anne Arthur Helen Oliver
Vivian Richard Emma Joseph Zoe Nathan Julia Edward Gloria""".split()
NUMBERS = "two three four five six seven eight nine ten eleven twelve twenty".split()
_PERSONS = (
    "boy girl teacher farmer doctor child thief judge student soldier lawyer nurse pilot singer captain"
)
PEOPLE = [n for n in NOUNS if n[0] in set(_PERSONS.split()) | {"king", "queen"}]


class SentenceGenerator:
    """Random English sentences from a small grammar; deterministic given the ``random.Random``.

    Example
    -------
    >>> gen = SentenceGenerator(random.Random(0))
    >>> sentence = gen.sentence()
    >>> sentence[0].isupper() and sentence[-1] in ".?"
    True
    >>> sentence == SentenceGenerator(random.Random(0)).sentence()
    True
    """

    def __init__(self, rng: random.Random):
        self.rng = rng

    def _np(self, plural: bool = False) -> str:
        r = self.rng
        noun = r.choice(NOUNS)[1 if plural else 0]
        if plural:
            return " ".join(w for w in [r.choice(["the", r.choice(NUMBERS), "some", "many"]), noun])
        article = r.choice(["the", "the", "a", "his", "her", "their", "your"])
        if article == "a":
            adjective = r.choice(ADJECTIVES)
            return f"{'an' if adjective[0] in 'aeiou' else 'a'} {adjective} {noun}"
        return f"{article} {r.choice(ADJECTIVES)} {noun}" if r.random() < 0.6 else f"{article} {noun}"

    def _subject(self) -> str:
        r = self.rng
        return r.choice([lambda: r.choice(NAMES), lambda: self._np(), lambda: self._np(plural=True)])()

    def sentence(self) -> str:
        """One sentence, capitalized, ending in ``.`` or ``?``."""
        r = self.rng
        verb, past = r.choice(VERBS)
        templates = [
            lambda: f"{self._subject()} {past} {self._np(r.random() < 0.3)} {r.choice(ADVERBS)}.",
            lambda: f"{self._subject()} {past} {self._np()} {r.choice(PREPOSITIONS)} {self._np()}.",
            lambda: f"{r.choice(NAMES)} and {r.choice(NAMES)} {past} {self._np(True)}, {r.choice(ADVERBS)}.",
            lambda: f"Did {self._subject()} {verb} {self._np()} {r.choice(PREPOSITIONS)} {self._np()}?",
            lambda: f"{self._subject()} will {verb} the {r.choice(MASS_NOUNS)} {r.choice(ADVERBS)}.",
            lambda: (
                f"{r.choice(ADVERBS).capitalize()}, {self._subject()} {past} {self._np(r.random() < 0.5)}."
            ),
            lambda: (
                f"The {r.choice(PEOPLE)[0]} was {r.choice(ADJECTIVES)} because {self._subject()} "
                f"{past} the {r.choice(MASS_NOUNS)}."
            ),
            lambda: f"Why would {self._subject()} {verb} {r.choice(NUMBERS)} {r.choice(NOUNS)[1]}?",
            lambda: (
                f"There were {r.choice(NUMBERS)} {r.choice(ADJECTIVES)} {r.choice(NOUNS)[1]} "
                f"{r.choice(PREPOSITIONS)} {self._np()}."
            ),
        ]
        text = r.choice(templates)()
        return text[0].upper() + text[1:]


def sentence_words(text: str) -> list[str]:
    """Lower-case words of a sentence, as in TIMIT's ``.WRD`` files.

    Example
    -------
    >>> sentence_words("Don't ask me, John.")
    ["don't", 'ask', 'me', 'john']
    """
    return [w.strip(PUNCTUATION).lower() for w in text.split() if w.strip(PUNCTUATION)]
