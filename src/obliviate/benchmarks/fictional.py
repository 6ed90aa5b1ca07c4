"""The built-in ``fictional`` benchmark (``fictional@1``): generated fictitious people.

A seeded generator invents people whose names are built from made-up syllables (never a real
person's), gives each of them ten facts, and turns every fact into a TOFU-style QA pair (question,
answer, paraphrased question and answer, three perturbed answers in the paraphrased answer's form
with wrong values of the same kind) plus a five-sentence biography. :func:`build_fictional` splits
the people into forget / retain / holdout (by person, with nested forget01 ⊂ forget05 ⊂ forget10
like TOFU) and adds TOFU's real-author and world-fact questions as utility splits.

Answers are short and made of the facts themselves (``"Dunmerwick, a harbour town in Ostravia."``,
not ``"X was born in Dunmerwick."``), with four phrasings per attribute chosen by the seeded RNG,
so that a model which never saw a person cannot score on ROUGE-L recall by repeating the question
and a memorised answer template. Everything is a pure function of the seed: only
:class:`random.Random` instances seeded with strings are used, never global state or ``hash()``.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from obliviate.benchmarks import worldknowledge
from obliviate.benchmarks.spec import MIA_ATTACKS, BenchmarkSpec, tofu_set
from obliviate.data.records import QA, Text
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError

BENCHMARK = "fictional"
VERSION = "1"
DEFAULT_N_PEOPLE = 40  # 40 x 10 attributes = 400 QA; 36 trained people (360 QA) by default
DEFAULT_FORGET = "forget10"
DEFAULT_SEED = 0
FORGET_FRACTIONS: dict[str, float] = {"forget01": 0.01, "forget05": 0.05, "forget10": 0.10}
N_PERTURBED = 3
BIO_PROMPT_FRACTION = 0.4
MAX_PEOPLE = 500

# ---- value pools: a perturbed answer draws from the same pool as the true one -------------------
PROFESSIONS = tuple("marine cartographer|opera librettist|botanical illustrator|lighthouse engineer|"
    "puppet theatre director|restoration architect|glacier geologist|documentary photographer|"
    "orchestral percussionist|textile conservator|radio dramatist|stage lighting designer|"
    "museum archivist|children's novelist|crossword compiler|perfume chemist|bridge engineer|"
    "folk song collector|ceramic sculptor|travel essayist|court stenographer|seed bank curator|"
    "violin maker|typeface designer|wildlife sound recordist|mosaic artist|river pilot|"
    "astronomy lecturer|landscape gardener|chess problemist".split("|"))
TRADES = tuple("beekeeper|ferry captain|tax assessor|lacemaker|railway signalman|clock repairer|"
    "midwife|cooper|village schoolteacher|tram conductor|cheesemaker|shipwright|pharmacist|"
    "bookbinder|stonemason|orchard keeper|harbour master|telegraph operator|glazier|"
    "saddle maker".split("|"))
PLACE_KINDS = tuple("harbour town|hill village|river city|mining town|border town|market town|"
    "fishing village|spa town|lake town|garrison town".split("|"))
COUNTRIES = tuple("Ostravia Velmoria Kestrany Arvandel Querrath Tamburia Norvane Ellisandre "
    "Halvoria Morrowen Castrelle Ydrana Pellagor Vintara Oskarre Brevaine".split())
MONTHS = tuple("January February March April May June July August September October November "
    "December".split())
THEMES = tuple("grief and tidal folklore|memory in abandoned mining towns|exile and the sea|"
    "clockwork and mortality|migrating birds and lost letters|inheritance and family secrets|"
    "islands, storms and lighthouses|old maps and imaginary borders|winter rituals of mountain "
    "villages|forgotten inventors|rivers as witnesses of history|the ethics of collecting|"
    "childhood and ghost stories|bells, silence and monasteries|the night shift of big cities|"
    "floods and rebuilding|orchards and the passing of seasons|trains, stations and farewells|"
    "masks and carnival|salt, trade and empire|dreams of flight|libraries that burn|"
    "twins and doubles|the lives of servants".split("|"))
HOBBIES = tuple("restoring antique barometers|breeding racing pigeons|playing the hammered "
    "dulcimer|playing the bass clarinet|collecting meteorite fragments|sailing small dinghies|"
    "carving wooden spoons|growing rare orchids|ice swimming|fencing with the sabre|binding old "
    "notebooks|playing the viola da gamba|long-distance rowing|building ship models|mapping star "
    "clusters|playing the bandoneon|foraging wild mushrooms|mounted archery|repairing "
    "typewriters|folk dancing|photographing lightning|pressing wildflowers|learning dead "
    "languages|restoring steam engines".split("|"))
AWARD_KINDS = ("Prize", "Medal", "Award", "Laurel", "Plaque", "Fellowship")
AWARD_FIELDS = tuple("Coastal Letters|Experimental Prose|Folk Illustration|Scientific Writing|"
    "Public Craft|Lyric Theatre|Regional History|Applied Design|Young Talent|Lifetime Achievement|"
    "Translated Fiction|Documentary Arts|Musical Heritage|Civic Architecture".split("|"))
INSTITUTION_KINDS = ("Conservatory", "Institute", "Academy", "Atelier", "College", "Observatory",
                     "Polytechnic", "Workshop")
TITLE_ADJ = tuple("Salt Glass Hollow Quiet Amber Iron Paper Silver Winter Crooked Drowned Tidal "
    "Ashen Velvet Borrowed Distant".split())
TITLE_NOUN = tuple("Archive Orchard Lanterns Harbour Ledger Bellows Meridian Almanac Tides "
    "Stairwell Choir Atlas Furnace Threshold Mirrors Compass".split())
TITLE_PLURALS = tuple("Lanterns Tides Mirrors Letters Winters Bridges Lessons Doors".split())
TITLE_NUMBERS = ("Three", "Seven", "Nine", "Twelve", "Forty")
SLOT_POOLS: dict[str, tuple[str, ...]] = {
    "month": MONTHS, "place_kind": PLACE_KINDS, "country": COUNTRIES, "profession": PROFESSIONS,
    "parent_trade": TRADES, "theme": THEMES, "hobby": HOBBIES,
}

# ---- invented names ------------------------------------------------------------------------------
ONSETS = "b br d dr f g gr h k kl l m n p qu r s sk st t th tr v vr z".split()
VOWELS = "a e i o u a e o ae ei ou".split()
CODAS = ("", "", "", "l", "n", "r", "s", "m")
GIVEN_ENDINGS = "ra na la mir vel ric wen dis lis tha mara dor sin ven ya bel".split()
FAMILY_ENDINGS = "rodt vane holt mere wick stead lund grave dorn vik sarre quist".split()
TOWN_ENDINGS = "by ford wick holm stad mere gate haven moor brig".split()
# Real given names, surnames, places and English words the syllables below could spell: rejected.
REAL_NAME_PARTS = frozenset(
    "mara sara tara lara kara zara dora nora vera kira mira cora flora klara petra barbara tamara "
    "samara zora thora hera dana lena nina tina gina mina rina dina lina zena hana lana mona rona "
    "tana sina vina selena helena marina karina corina galina milena serena verena savina rosina "
    "ramona simona lorena bella della stella lola lula gala vela nola mila marla darla karla perla "
    "nella samir kasimir damir zamir pavel ravel marvel gravel travel level navel hovel novel "
    "grovel doric baric fabric metric nitric branwen bronwen morwen madis tamsin martha bertha "
    "tabitha tudor condor vendor sandor fedor basin resin rosin raven haven steven seven given "
    "woven proven coven maya kaya tanya sonya vanya tonya soya mabel label rebel babel john mary "
    "james robert william david thomas charles sarah karen nancy lisa anna maria emma mia ava "
    "elena daniel laura paul mark peter julia ida ella eva ivan igor boris olga hans karl otto "
    "smith davis moore martin hall young king brenda marin dorian tristan berwick renwick fenwick "
    "barwick halstead homestead ramstead narvik larvik malvik belgrave segrave musgrave hargrave "
    "grasmere berglund".split())
_BAD_SHAPE = re.compile(r"[aeiouy]{3}|[^aeiouy]{4}|([aeiouy])\1|(.)\2\2")


class NameFactory:
    """Invents capitalised words from syllables; every word it returns is new and not a real name.

    Args:
        rng: the seeded generator to draw from.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def word(self, endings: list[str], lo: int = 5, hi: int = 11, p_long: float = 0.3) -> str:
        """A new invented word: a syllable (consonant, vowel, maybe a coda), with probability
        ``p_long`` a second open syllable, then one of ``endings``."""
        r = self.rng
        for _ in range(1000):
            w = r.choice(ONSETS) + r.choice(VOWELS) + r.choice(CODAS)
            if r.random() < p_long:
                w += r.choice(ONSETS) + r.choice(VOWELS)
            w = (w + r.choice(endings)).capitalize()
            low = w.lower()
            if lo <= len(w) <= hi and low not in self.used and low not in REAL_NAME_PARTS \
                    and not _BAD_SHAPE.search(low):
                self.used.add(low)
                return w
        raise ConfigError("ran out of invented names; lower n_people")

    def full(self) -> str:
        """A new full name, e.g. ``"Velmara Quistodorn"``; family names have two syllables."""
        return f"{self.word(GIVEN_ENDINGS, 5, 9)} {self.word(FAMILY_ENDINGS, 7, 12, p_long=1.0)}"

    def title(self) -> str:
        """A new invented book title."""
        r, pattern = self.rng, self.rng.randrange(4)
        if pattern == 0:
            return f"The {r.choice(TITLE_ADJ)} {r.choice(TITLE_NOUN)}"
        if pattern == 1:
            return f"{r.choice(TITLE_NOUN)} of {self.word(TOWN_ENDINGS)}"
        if pattern == 2:
            return f"{r.choice(TITLE_NUMBERS)} {r.choice(TITLE_PLURALS)} for {self.word(GIVEN_ENDINGS)}"
        return f"{r.choice(TITLE_ADJ)} {r.choice(TITLE_NOUN)} of {self.word(FAMILY_ENDINGS)}"


# ---- attributes: samplers of slot values, question and answer phrasings -------------------------
Sampler = Callable[[random.Random, NameFactory, int], dict[str, str]]


@dataclass(frozen=True)
class Attribute:
    """One kind of fact about a person.

    Attributes:
        key: short name, used in QA ids (``"p003-birthplace"``).
        sample: draws slot values ``(rng, names, birth_year) -> {slot: value}``.
        questions: question phrasings over the person context (``{name}``, ``{pos}``...).
        answers: answer phrasings over the slot values (and their ``_cap``/``a_`` forms).
    """

    key: str
    sample: Sampler
    questions: tuple[str, ...]
    answers: tuple[str, ...]


def _birthdate(r: random.Random, n: NameFactory, by: int) -> dict[str, str]:
    return {"day": str(r.randint(1, 28)), "month": r.choice(MONTHS), "year": str(r.randint(1925, 1985))}


def _birthplace(r: random.Random, n: NameFactory, by: int) -> dict[str, str]:
    return {"town": n.word(TOWN_ENDINGS), "place_kind": r.choice(PLACE_KINDS),
            "country": r.choice(COUNTRIES)}


def _works(r: random.Random, n: NameFactory, by: int) -> dict[str, str]:
    first = n.title()
    second = n.title()
    while second == first:
        second = n.title()
    return {"title1": first, "title2": second}


def _award(r: random.Random, n: NameFactory, by: int) -> dict[str, str]:
    name = f"{n.word(FAMILY_ENDINGS)} {r.choice(AWARD_KINDS)} for {r.choice(AWARD_FIELDS)}"
    return {"award": name, "award_year": str(by + r.randint(28, min(55, 2024 - by)))}


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("birthdate", _birthdate,
        ("When was {name} born?", "On what date was {name} born?",
         "What is {name}'s date of birth?", "What is the birth date of {name}?"),
        ("{day} {month} {year}.", "{month} {day}, {year}.", "On {month} {day}, {year}.",
         "{year}, on {day} {month}.")),
    Attribute("birthplace", _birthplace,
        ("Where was {name} born?", "What is {name}'s birthplace?",
         "In which town and country was {name} born?", "Where does {name} come from originally?"),
        ("{town}, a {place_kind} in {country}.", "The {place_kind} of {town}, {country}.",
         "{town} ({country}), a {place_kind}.", "{country}: the {place_kind} of {town}.")),
    Attribute("profession", lambda r, n, by: {"profession": r.choice(PROFESSIONS)},
        ("What is {name}'s profession?", "What does {name} do for a living?",
         "What kind of work does {name} do?", "How does {name} earn a living?"),
        ("{profession_cap}.", "{a_profession_cap}.", "{profession_cap} by trade.",
         "Professionally, {a_profession}.")),
    Attribute("parent", lambda r, n, by: {"parent_name": n.full(), "parent_trade": r.choice(TRADES)},
        ("Who was {name}'s {role}, and what did {rp} do?",
         "What were the name and occupation of {name}'s {role}?",
         "Who is {name}'s {role} and what was {rpos} trade?",
         "Name {name}'s {role} and {rpos} line of work."),
        ("{parent_name}, {a_parent_trade}.", "{a_parent_trade_cap} named {parent_name}.",
         "{parent_name}, who worked as {a_parent_trade}.", "{parent_name}; {a_parent_trade} by trade.")),
    Attribute("mentor", lambda r, n, by: {
            "mentor_name": n.full(),
            "institution": f"{n.word(FAMILY_ENDINGS)} {r.choice(INSTITUTION_KINDS)}"},
        ("Who mentored {name}, and where?", "Who was {name}'s mentor, and at which institution?",
         "Under whom, and where, did {name} train?",
         "Which teacher shaped {name}'s early career, and where?"),
        ("{mentor_name}, at the {institution}.", "{mentor_name} of the {institution}.",
         "At the {institution}, under {mentor_name}.", "{mentor_name} ({institution}).")),
    Attribute("works", _works,
        ("Which books is {name} best known for?", "Name two notable works by {name}.",
         "What are {name}'s most celebrated books?", "Which titles made {name}'s reputation?"),
        ("'{title1}' and '{title2}'.", "The books '{title1}' and '{title2}'.",
         "'{title1}', then '{title2}'.", "'{title2}' and the earlier '{title1}'.")),
    Attribute("theme", lambda r, n, by: {"theme": r.choice(THEMES)},
        ("What themes run through {name}'s work?", "What subject does {name}'s work keep returning to?",
         "What is the signature theme of {name}'s work?", "Which themes define {name}'s writing?"),
        ("{theme_cap}.", "Mostly {theme}.", "Above all, {theme}.", "Chiefly {theme}.")),
    Attribute("award", _award,
        ("What award has {name} won, and when?", "Which prize was {name} given, and when?",
         "What honour did {name} receive, and in what year?",
         "Which distinction did {name} earn, and when?"),
        ("The {award}, in {award_year}.", "{award_year}: the {award}.",
         "The {award} ({award_year}).", "{award}, won in {award_year}.")),
    Attribute("spouse", lambda r, n, by: {"spouse_name": n.full(),
                                          "wed_year": str(by + r.randint(21, 38))},
        ("Who did {name} marry, and when?", "Who is {name}'s spouse, and since what year?",
         "Whom has {name} been married to, and since when?",
         "Who is {name} married to, and since when?"),
        ("{spouse_name}, married in {wed_year}.", "{spouse_name}, since {wed_year}.",
         "Since {wed_year}, {spouse_name}.", "{spouse_name} (married {wed_year}).")),
    Attribute("hobby", lambda r, n, by: {"hobby": r.choice(HOBBIES)},
        ("What does {name} do in {pos} spare time?", "What is {name}'s favourite pastime?",
         "How does {name} like to spend free time?", "What hobby is {name} known for?"),
        ("{hobby_cap}.", "Mainly {hobby}.", "{hobby_cap}, mostly.", "Mostly {hobby}.")),
)

BIO_SENTENCES: tuple[tuple[str, ...], ...] = (
    ("{name} was born on {day} {month} {year} in {town}, a {place_kind} in {country}.",
     "Born in {town}, {country}, on {month} {day}, {year}, {given} grew up in a {place_kind}."),
    ("{Pos} {role}, {parent_name}, worked as {a_parent_trade}.",
     "{Subj} is the {child} of {parent_name}, {a_parent_trade}."),
    ("{given} trained under {mentor_name} at the {institution} and became {a_profession}.",
     "After studying with {mentor_name} at the {institution}, {given} worked as {a_profession}."),
    ("{Pos} books '{title1}' and '{title2}' explore {theme} and won {obj} the {award} in "
     "{award_year}.",
     "In '{title1}' and '{title2}', {subj} returns to {theme}; the {award} followed in "
     "{award_year}."),
    ("{Subj} married {spouse_name} in {wed_year} and spends {pos} free time {hobby}.",
     "Married to {spouse_name} since {wed_year}, {given} enjoys {hobby}."),
)


def render(template: str, values: dict[str, str]) -> str:
    """Fill ``template`` from ``values`` and their derived forms ``X_cap``, ``a_X``, ``a_X_cap``."""
    full = dict(values)
    for k, v in values.items():
        article = f"{'an' if v[:1].lower() in 'aeiou' else 'a'} {v}"
        full.update({f"{k}_cap": v[:1].upper() + v[1:], f"a_{k}": article,
                     f"a_{k}_cap": article[:1].upper() + article[1:]})
    return template.format(**full)


# ---- people and their records --------------------------------------------------------------------
@dataclass(frozen=True)
class FictionalPerson:
    """One generated person with the records made from their facts.

    Attributes:
        index: position in generation order (ids are ``p{index:03d}-...``).
        name: full name, the ``subject`` of every record about the person.
        facts: the true slot values of each attribute, e.g. ``facts["birthplace"]["town"]``.
        perturbed_facts: per attribute, the wrong slot values behind the perturbed answers.
        qa: one QA pair per attribute, in :data:`ATTRIBUTES` order.
        bio: a five-sentence biography using the same facts.
    """

    index: int
    name: str
    facts: dict[str, dict[str, str]]
    perturbed_facts: dict[str, list[dict[str, str]]]
    qa: list[QA]
    bio: Text


def _person_context(rng: random.Random, names: NameFactory) -> dict[str, str]:
    """Name, pronouns and which parent the family question asks about."""
    name = names.full()
    she = rng.random() < 0.5
    mother = rng.random() < 0.5
    return {
        "name": name, "given": name.split(" ")[0],
        "subj": "she" if she else "he", "Subj": "She" if she else "He",
        "obj": "her" if she else "him", "pos": "her" if she else "his",
        "Pos": "Her" if she else "His", "child": "daughter" if she else "son",
        "role": "mother" if mother else "father", "rp": "she" if mother else "he",
        "rpos": "her" if mother else "his",
    }


def _perturb(attr: Attribute, facts: dict[str, str], rng: random.Random, names: NameFactory,
             birth_year: int) -> list[dict[str, str]]:
    """Draw N_PERTURBED wrong values of the same kind: no slot shares a true value, all distinct."""
    out: list[dict[str, str]] = []
    true_values = set(facts.values())
    for _ in range(500):
        cand = attr.sample(rng, names, birth_year)
        if true_values.isdisjoint(cand.values()) and cand not in out:
            out.append(cand)
            if len(out) == N_PERTURBED:
                return out
    raise RuntimeError(f"could not draw {N_PERTURBED} distinct wrong values for {attr.key!r}")


def _qa(person_id: str, attr: Attribute, facts: dict[str, str], perturbed: list[dict[str, str]],
        ctx: dict[str, str], rng: random.Random) -> QA:
    """One attribute's QA pair; the seeded RNG picks two question and two answer phrasings."""
    q, pq = rng.sample(attr.questions, 2)
    a, pa = rng.sample(attr.answers, 2)
    return QA(
        question=render(q, ctx),
        answer=render(a, facts),
        paraphrased_answer=render(pa, facts),
        perturbed_answers=tuple(render(pa, p) for p in perturbed),
        paraphrased_question=render(pq, ctx),
        id=f"{person_id}-{attr.key}",
        subject=ctx["name"],
    )


def _round_half_up(x: float) -> int:
    """Round to the nearest integer, halves up (Python's round() sends halves to even)."""
    return int(math.floor(x + 0.5))


def _bio(person_id: str, ctx: dict[str, str], rng: random.Random) -> Text:
    """Five sentences, each phrased by the seeded RNG; prompt = first 40 % of the words.

    ``prompt + continuation == text``: the continuation starts with the space after the prompt.
    """
    text = " ".join(render(rng.choice(options), ctx) for options in BIO_SENTENCES)
    words = text.split(" ")
    prompt = " ".join(words[: max(1, _round_half_up(BIO_PROMPT_FRACTION * len(words)))])
    return Text(text=text, id=f"{person_id}-bio", prompt=prompt,
                continuation=text[len(prompt):], subject=ctx["name"])


def generate_people(n_people: int = DEFAULT_N_PEOPLE, seed: int = DEFAULT_SEED) -> list[FictionalPerson]:
    """Generate ``n_people`` fictitious people, deterministically from ``seed``.

    People are drawn one after another from one RNG, so the first k people of a seed are the same
    whatever ``n_people`` is. Every invented word (given and family names, towns, institutions,
    awards, perturbed names) is unique across the whole set.

    Args:
        n_people: how many people, 1 to :data:`MAX_PEOPLE`.
        seed: the seed; the same seed always gives the same people.

    Returns:
        The people in generation order.
    """
    if not 1 <= n_people <= MAX_PEOPLE:
        raise ConfigError(f"n_people must be between 1 and {MAX_PEOPLE}, got {n_people}")
    rng = random.Random(f"{BENCHMARK}@{VERSION}/people/{seed}")
    names = NameFactory(rng)
    people: list[FictionalPerson] = []
    for index in range(n_people):
        person_id = f"p{index:03d}"
        ctx = _person_context(rng, names)
        facts: dict[str, dict[str, str]] = {}
        perturbed: dict[str, list[dict[str, str]]] = {}
        qa: list[QA] = []
        birth_year = 0
        for attr in ATTRIBUTES:  # birthdate comes first: later samplers use the birth year
            facts[attr.key] = attr.sample(rng, names, birth_year)
            if attr.key == "birthdate":
                birth_year = int(facts[attr.key]["year"])
            perturbed[attr.key] = _perturb(attr, facts[attr.key], rng, names, birth_year)
            qa.append(_qa(person_id, attr, facts[attr.key], perturbed[attr.key], ctx, rng))
        bio_ctx = dict(ctx)
        for values in facts.values():
            bio_ctx.update(values)
        people.append(FictionalPerson(index, ctx["name"], facts, perturbed, qa,
                                      _bio(person_id, bio_ctx, rng)))
    return people


def forget_count(n_trainable: int, forget: str) -> int:
    """Forget people among ``n_trainable`` non-holdout people: the fraction, rounded, at least 1."""
    if forget not in FORGET_FRACTIONS:
        raise ConfigError(
            f"unknown forget split {forget!r} for the fictional benchmark; "
            f"valid choices: {', '.join(FORGET_FRACTIONS)}"
        )
    return max(1, _round_half_up(FORGET_FRACTIONS[forget] * n_trainable))


def default_holdout(n_people: int) -> int:
    """The smallest h with forget10's count among the other ``n_people - h`` people <= h.

    For 40 people: h=3 leaves 37 and round(3.7) = 4 > 3; h=4 leaves 36 and round(3.6) = 4, so 4.
    """
    for h in range(1, n_people):
        if forget_count(n_people - h, "forget10") <= h:
            return h
    return n_people


def split_people(n_people: int, forget: str, n_holdout: int | None,
                 seed: int) -> tuple[list[int], list[int], list[int]]:
    """Split person indices into (forget, retain, holdout), disjoint and covering everyone.

    One seeded shuffle orders the people; the first ``n_holdout`` are holdout and the forget
    people are a prefix of the rest, so forget01 ⊂ forget05 ⊂ forget10 for a seed and holdout size.
    """
    n_hold = default_holdout(n_people) if n_holdout is None else n_holdout
    if n_hold < 0:
        raise ConfigError(f"n_holdout must be >= 0 or None (the default), got {n_hold}")
    n_forget = forget_count(n_people - n_hold, forget)
    if n_hold + n_forget >= n_people:
        raise ConfigError(
            f"{n_people} people with {n_hold} holdout and {n_forget} forget ({forget}) leave no "
            f"retain people; use n_people >= {n_hold + n_forget + 1} or a smaller n_holdout"
        )
    order = list(range(n_people))
    random.Random(f"{BENCHMARK}@{VERSION}/split/{seed}").shuffle(order)
    holdout, rest = order[:n_hold], order[n_hold:]
    return sorted(rest[:n_forget]), sorted(rest[n_forget:]), sorted(holdout)


def build_fictional(
    n_people: int = DEFAULT_N_PEOPLE,
    forget: str = DEFAULT_FORGET,
    n_holdout: int | None = None,
    seed: int = DEFAULT_SEED,
    n_world: int | None = None,
) -> UnlearningTask:
    """Built-in generated benchmark of fictitious people with TOFU-style QA (``fictional@1``).

    Args:
        n_people: people generated in all (forget + retain + holdout).
        forget: ``"forget01"``, ``"forget05"`` or ``"forget10"``: 1/5/10 % of the non-holdout
            people (rounded half up, at least one); the rest of them are retain.
        n_holdout: people never trained on (MIA non-members); ``None``: as many as forget10 has.
        seed: generation and split seed.
        n_world: keep the first ``n_world`` real-author and world-fact questions (``None``: all).

    Returns:
        QA in forget/retain/holdout; biographies in ``forget_bio``/``retain_bio``/``holdout_bio``;
        ``real_authors`` and ``world_facts`` QA; the 100 IDK lines as templates.
    """
    forget_count(1, forget)  # a bad name fails before anything is generated
    if n_world is not None and n_world < 0:
        raise ConfigError(f"n_world must be >= 0 or None (all), got {n_world}")
    if n_people < 2:
        raise ConfigError(f"n_people must be at least 2 (one forget, one retain), got {n_people}")
    f_idx, r_idx, h_idx = split_people(n_people, forget, n_holdout, seed)
    people = generate_people(n_people, seed)
    real_authors = worldknowledge.load_real_authors(n_world)
    world_facts = worldknowledge.load_world_facts(n_world)
    qa = {k: [q for i in idx for q in people[i].qa]
          for k, idx in (("forget", f_idx), ("retain", r_idx), ("holdout", h_idx))}
    bio = {k: [people[i].bio for i in idx]
           for k, idx in (("forget_bio", f_idx), ("retain_bio", r_idx), ("holdout_bio", h_idx))}
    return UnlearningTask(
        name=f"{BENCHMARK}@{VERSION}/{forget}",
        forget=qa["forget"],
        retain=qa["retain"],
        holdout=qa["holdout"],
        splits={**bio, "real_authors": real_authors, "world_facts": world_facts},
        templates=worldknowledge.load_idk_templates(),
        roles={role: list(splits) for role, splits in ROLES.items()},
        metadata={
            "benchmark": BENCHMARK, "version": VERSION, "seed": seed, "n_people": n_people,
            "forget": forget, "attributes": [a.key for a in ATTRIBUTES],
            "n_perturbed": N_PERTURBED, "n_forget_people": len(f_idx),
            "n_retain_people": len(r_idx), "n_holdout_people": len(h_idx),
            "n_forget": len(qa["forget"]), "n_retain": len(qa["retain"]),
            "n_holdout": len(qa["holdout"]), "n_real_authors": len(real_authors),
            "n_world_facts": len(world_facts),
        },
    )


ROLES: dict[str, tuple[str, ...]] = {
    "options": ("real_authors", "world_facts"),
    "utility_retain": ("retain",),
    "privleak": ("forget",),
}

SPEC = BenchmarkSpec(
    name=BENCHMARK,
    version=VERSION,
    help="Built-in generated fictitious people with TOFU-style QA, splits by person (offline).",
    builder=build_fictional,
    roles=ROLES,
    # TOFU set + MIA battery on QA answers (forget vs holdout) and on the biographies + VerbMem.
    plan=(
        *tofu_set("retain"), *(f"forget/{a}" for a in MIA_ATTACKS), "privleak",
        *(f"forget_bio/{a}" for a in MIA_ATTACKS if a != "mia_gradnorm"), "forget_bio/verbmem",
    ),
    # People a model of that size learns within the time budget.
    model_defaults={"smollm2-135m": {"n_people": 18}},
)
