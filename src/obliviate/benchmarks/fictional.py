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
from dataclasses import dataclass

from obliviate.benchmarks import worldknowledge
from obliviate.benchmarks.fictional_facts import (
    ATTRIBUTES,
    BIO_SENTENCES,
    Attribute,
    NameFactory,
    render,
)
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


def generate_people(
    n_people: int = DEFAULT_N_PEOPLE, seed: int = DEFAULT_SEED
) -> list[FictionalPerson]:
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
