"""What the fictional benchmark's facts are made of: value pools (a perturbed answer draws from the
same pool as the true one), the :class:`NameFactory` that invents names never borne by a real
person, the ten attributes with their question and answer phrasings, and the biography sentences."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from obliviate.errors import ConfigError

# ---- value pools: a perturbed answer draws from the same pool as the true one -------------------
PROFESSIONS = tuple(
    "marine cartographer|opera librettist|botanical illustrator|lighthouse engineer|"
    "puppet theatre director|restoration architect|glacier geologist|documentary photographer|"
    "orchestral percussionist|textile conservator|radio dramatist|stage lighting designer|"
    "museum archivist|children's novelist|crossword compiler|perfume chemist|bridge engineer|"
    "folk song collector|ceramic sculptor|travel essayist|court stenographer|seed bank curator|"
    "violin maker|typeface designer|wildlife sound recordist|mosaic artist|river pilot|"
    "astronomy lecturer|landscape gardener|chess problemist".split("|")
)
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
            return (
                f"{r.choice(TITLE_NUMBERS)} {r.choice(TITLE_PLURALS)} for "
                f"{self.word(GIVEN_ENDINGS)}"
            )
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
    return {
        "day": str(r.randint(1, 28)),
        "month": r.choice(MONTHS),
        "year": str(r.randint(1925, 1985)),
    }


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
    Attribute(
        "birthdate",
        _birthdate,
        (
            "When was {name} born?",
            "On what date was {name} born?",
            "What is {name}'s date of birth?",
            "What is the birth date of {name}?",
        ),
        (
            "{day} {month} {year}.",
            "{month} {day}, {year}.",
            "On {month} {day}, {year}.",
            "{year}, on {day} {month}.",
        ),
    ),
    Attribute(
        "birthplace",
        _birthplace,
        (
            "Where was {name} born?",
            "What is {name}'s birthplace?",
            "In which town and country was {name} born?",
            "Where does {name} come from originally?",
        ),
        (
            "{town}, a {place_kind} in {country}.",
            "The {place_kind} of {town}, {country}.",
            "{town} ({country}), a {place_kind}.",
            "{country}: the {place_kind} of {town}.",
        ),
    ),
    Attribute(
        "profession",
        lambda r, n, by: {"profession": r.choice(PROFESSIONS)},
        (
            "What is {name}'s profession?",
            "What does {name} do for a living?",
            "What kind of work does {name} do?",
            "How does {name} earn a living?",
        ),
        (
            "{profession_cap}.",
            "{a_profession_cap}.",
            "{profession_cap} by trade.",
            "Professionally, {a_profession}.",
        ),
    ),
    Attribute(
        "parent",
        lambda r, n, by: {"parent_name": n.full(), "parent_trade": r.choice(TRADES)},
        (
            "Who was {name}'s {role}, and what did {rp} do?",
            "What were the name and occupation of {name}'s {role}?",
            "Who is {name}'s {role} and what was {rpos} trade?",
            "Name {name}'s {role} and {rpos} line of work.",
        ),
        (
            "{parent_name}, {a_parent_trade}.",
            "{a_parent_trade_cap} named {parent_name}.",
            "{parent_name}, who worked as {a_parent_trade}.",
            "{parent_name}; {a_parent_trade} by trade.",
        ),
    ),
    Attribute(
        "mentor",
        lambda r, n, by: {
            "mentor_name": n.full(),
            "institution": f"{n.word(FAMILY_ENDINGS)} {r.choice(INSTITUTION_KINDS)}",
        },
        (
            "Who mentored {name}, and where?",
            "Who was {name}'s mentor, and at which institution?",
            "Under whom, and where, did {name} train?",
            "Which teacher shaped {name}'s early career, and where?",
        ),
        (
            "{mentor_name}, at the {institution}.",
            "{mentor_name} of the {institution}.",
            "At the {institution}, under {mentor_name}.",
            "{mentor_name} ({institution}).",
        ),
    ),
    Attribute(
        "works",
        _works,
        (
            "Which books is {name} best known for?",
            "Name two notable works by {name}.",
            "What are {name}'s most celebrated books?",
            "Which titles made {name}'s reputation?",
        ),
        (
            "'{title1}' and '{title2}'.",
            "The books '{title1}' and '{title2}'.",
            "'{title1}', then '{title2}'.",
            "'{title2}' and the earlier '{title1}'.",
        ),
    ),
    Attribute(
        "theme",
        lambda r, n, by: {"theme": r.choice(THEMES)},
        (
            "What themes run through {name}'s work?",
            "What subject does {name}'s work keep returning to?",
            "What is the signature theme of {name}'s work?",
            "Which themes define {name}'s writing?",
        ),
        ("{theme_cap}.", "Mostly {theme}.", "Above all, {theme}.", "Chiefly {theme}."),
    ),
    Attribute(
        "award",
        _award,
        (
            "What award has {name} won, and when?",
            "Which prize was {name} given, and when?",
            "What honour did {name} receive, and in what year?",
            "Which distinction did {name} earn, and when?",
        ),
        (
            "The {award}, in {award_year}.",
            "{award_year}: the {award}.",
            "The {award} ({award_year}).",
            "{award}, won in {award_year}.",
        ),
    ),
    Attribute(
        "spouse",
        lambda r, n, by: {"spouse_name": n.full(), "wed_year": str(by + r.randint(21, 38))},
        (
            "Who did {name} marry, and when?",
            "Who is {name}'s spouse, and since what year?",
            "Whom has {name} been married to, and since when?",
            "Who is {name} married to, and since when?",
        ),
        (
            "{spouse_name}, married in {wed_year}.",
            "{spouse_name}, since {wed_year}.",
            "Since {wed_year}, {spouse_name}.",
            "{spouse_name} (married {wed_year}).",
        ),
    ),
    Attribute(
        "hobby",
        lambda r, n, by: {"hobby": r.choice(HOBBIES)},
        (
            "What does {name} do in {pos} spare time?",
            "What is {name}'s favourite pastime?",
            "How does {name} like to spend free time?",
            "What hobby is {name} known for?",
        ),
        ("{hobby_cap}.", "Mainly {hobby}.", "{hobby_cap}, mostly.", "Mostly {hobby}."),
    ),
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
