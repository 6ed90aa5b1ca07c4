"""Tests of the built-in ``fictional@1`` benchmark and the vendored TOFU world-knowledge files."""

from __future__ import annotations

import re
import statistics

import pytest
from rouge_score import rouge_scorer

from obliviate.benchmarks import BENCHMARKS, worldknowledge
from obliviate.benchmarks.fictional import (
    FORGET_FRACTIONS,
    build_fictional,
    default_holdout,
    forget_count,
    generate_people,
)
from obliviate.benchmarks.fictional_facts import ATTRIBUTES, COUNTRIES, SLOT_POOLS
from obliviate.data.records import QA, Text
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError

# A know-nothing model's guess: it repeats the question and pads it with a generic biography
# phrase made of the function words any answer would use.
GENERIC_GUESS = (
    "It is not widely known, but they were a writer who was born in a small town and is known "
    "for the work of their family in the city."
)
REAL_NAMES = {"John", "Mary", "Smith", "Emma", "Brown", "Steven", "Tamara", "Martha", "Sandor",
              "Maria", "Garcia", "Olga", "Halstead", "Musgrave", "William", "Shakespeare"}
SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


@pytest.fixture(scope="module")
def task() -> UnlearningTask:
    return build_fictional()


def subjects(records: list) -> set[str]:
    return {r.subject for r in records}


def test_default_sizes(task: UnlearningTask) -> None:
    """40 people: holdout h=4 (h=3 would leave 37 and round(3.7)=4 > 3; h=4 leaves 36 and
    round(3.6)=4 <= 4); forget10 = round(0.1 * 36) = 4; retain = 40 - 4 - 4 = 32 people;
    10 QA per person gives 40 / 320 / 40 QA."""
    assert default_holdout(40) == 4
    assert (len(task.forget), len(task.retain), len(task.holdout)) == (40, 320, 40)
    assert [len(task.splits[k]) for k in ("forget_bio", "retain_bio", "holdout_bio")] == [4, 32, 4]
    assert task.name == "fictional@1/forget10"
    meta = task.metadata
    assert (meta["benchmark"], meta["version"], meta["seed"], meta["forget"]) == (
        "fictional", "1", 0, "forget10")
    assert (meta["n_forget_people"], meta["n_retain_people"], meta["n_holdout_people"]) == (4, 32, 4)
    assert task.version == "1"


def test_same_seed_same_task_other_seed_differs(task: UnlearningTask) -> None:
    again = build_fictional()
    assert again.all_splits() == task.all_splits()
    assert again.metadata == task.metadata
    other = build_fictional(seed=1)
    assert other.all_splits() != task.all_splits()
    assert subjects(other.forget).isdisjoint(subjects(task.forget))
    # the first k people of a seed do not depend on n_people
    assert [p.qa for p in generate_people(10, 0)] == [p.qa for p in generate_people(40, 0)[:10]]


def test_splits_disjoint_by_person(task: UnlearningTask) -> None:
    f, r, h = subjects(task.forget), subjects(task.retain), subjects(task.holdout)
    assert (len(f), len(r), len(h)) == (4, 32, 4)
    assert f.isdisjoint(r) and f.isdisjoint(h) and r.isdisjoint(h)
    assert subjects(task.splits["forget_bio"]) == f
    assert subjects(task.splits["retain_bio"]) == r
    assert subjects(task.splits["holdout_bio"]) == h


def test_forget_sets_are_nested() -> None:
    """36 non-holdout people: forget01 = max(1, round(0.36)) = 1, forget05 = round(1.8) = 2,
    forget10 = round(3.6) = 4; the holdout is the same for all three."""
    tasks = {name: build_fictional(forget=name) for name in FORGET_FRACTIONS}
    f01, f05, f10 = (subjects(tasks[n].forget) for n in ("forget01", "forget05", "forget10"))
    assert (len(f01), len(f05), len(f10)) == (1, 2, 4)
    assert f01 < f05 < f10
    assert len({frozenset(subjects(t.holdout)) for t in tasks.values()}) == 1
    for t in tasks.values():
        assert len(subjects(t.forget)) + len(subjects(t.retain)) == 36


def test_qa_fields_and_perturbed_answers(task: UnlearningTask) -> None:
    for qa in task.forget + task.retain + task.holdout:
        assert isinstance(qa, QA)
        assert qa.paraphrased_answer and qa.paraphrased_question
        assert qa.paraphrased_question != qa.question and qa.paraphrased_answer != qa.answer
        assert re.fullmatch(r"p\d{3}-[a-z]+", qa.id) and qa.subject in qa.question
        assert 1 <= len(qa.answer.split()) <= 15
        assert len(qa.perturbed_answers) >= 3
        assert len(set(qa.perturbed_answers)) == len(qa.perturbed_answers)
        for wrong in qa.perturbed_answers:
            assert wrong not in (qa.answer, qa.paraphrased_answer)
    ids = [qa.id for qa in task.forget + task.retain + task.holdout]
    assert len(ids) == len(set(ids))


def test_perturbed_values_are_of_the_same_kind() -> None:
    for person in generate_people(30, seed=2):
        for qa, attr in zip(person.qa, ATTRIBUTES):
            truth = person.facts[attr.key]
            for wrong, answer in zip(person.perturbed_facts[attr.key], qa.perturbed_answers):
                assert wrong.keys() == truth.keys()
                for slot, value in wrong.items():
                    assert value != truth[slot]
                    assert value.lower() in answer.lower()  # the answer shows the wrong value
                    if slot in SLOT_POOLS:
                        assert value in SLOT_POOLS[slot], (slot, value)
                    elif slot in ("year", "award_year", "wed_year"):
                        assert 1925 <= int(value) <= 2024
                    elif slot.endswith("_name"):
                        assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", value)
                    elif slot == "day":
                        assert 1 <= int(value) <= 28
            if attr.key == "birthplace":
                assert all(p["country"] in COUNTRIES for p in person.perturbed_facts[attr.key])


def test_at_least_eight_attribute_kinds_per_person(task: UnlearningTask) -> None:
    kinds: dict[str, set[str]] = {}
    for qa in task.forget + task.retain + task.holdout:
        kinds.setdefault(qa.subject, set()).add(qa.id.split("-", 1)[1])
    assert len(kinds) == 40
    assert all(len(k) >= 8 for k in kinds.values())
    assert len(ATTRIBUTES) == 10


def test_names_invented_and_unique() -> None:
    people = generate_people(200, seed=5)
    names = [p.name for p in people]
    families = [n.split()[1] for n in names]
    assert len(set(names)) == 200 and len(set(families)) == 200
    for name in names:
        assert not set(name.split()) & REAL_NAMES
    side = [p.facts[a][k] for p in people for a, k in
            (("parent", "parent_name"), ("mentor", "mentor_name"), ("spouse", "spouse_name"))]
    assert set(side).isdisjoint(names) and len(set(side)) == len(side)


def test_biography(task: UnlearningTask) -> None:
    for bio in task.splits["forget_bio"] + task.splits["retain_bio"]:
        assert isinstance(bio, Text) and re.fullmatch(r"p\d{3}-bio", bio.id)
        assert bio.prompt is not None and bio.continuation is not None
        assert bio.prompt + bio.continuation == bio.text
        assert bio.text.count(". ") == 4 and bio.text.endswith(".")  # five sentences
        n_words, n_prompt = len(bio.text.split()), len(bio.prompt.split())
        assert abs(n_prompt - 0.4 * n_words) <= 1
    person = generate_people(1, seed=0)[0]
    for values in person.facts.values():
        for value in values.values():
            assert value in person.bio.text


def test_know_nothing_guess_scores_low_rouge_recall(task: UnlearningTask) -> None:
    """ROUGE-L recall (stemmed) of each forget answer against question + generic phrase; the
    spec asks for a mean below 0.3 (measured 0.208 for seed 0; 0.19-0.21 across seeds 0-2).
    Also the stronger leak: the paraphrased answer's own template filled with wrong values
    (the perturbed answers) recalls about 0.30 of the paraphrased answer."""
    guess = [SCORER.score(q.answer, f"{q.question} {GENERIC_GUESS}")["rougeL"].recall
             for q in task.forget]
    assert statistics.mean(guess) < 0.3
    swap = [SCORER.score(q.paraphrased_answer, w)["rougeL"].recall
            for q in task.forget + task.retain for w in q.perturbed_answers]
    assert statistics.mean(swap) < 0.35


def test_world_knowledge_and_idk() -> None:
    ra, wf = worldknowledge.load_real_authors(), worldknowledge.load_world_facts()
    assert (len(ra), len(wf)) == (100, 117)
    assert ra[0].question == "Who wrote the play 'Romeo and Juliet'?"
    assert ra[0].answer == "William Shakespeare" and ra[0].paraphrased_answer is None
    assert ra[0].perturbed_answers == ("Charles Dickens", "Virginia Woolf", "Mark Twain")
    assert wf[2].answer == "Canberra" and wf[0].id == "wf-000"
    assert all(len(q.perturbed_answers) == 3 for q in ra + wf)
    idk = worldknowledge.load_idk_templates()
    assert len(idk) == 100 and idk[0] == "I'm not certain about that."
    small = build_fictional(n_world=5)
    assert len(small.splits["real_authors"]) == 5 and len(small.splits["world_facts"]) == 5
    assert small.templates == idk


def test_rehearsal_qa_is_disjoint_from_the_utility_evaluation() -> None:
    import re

    rehearsal = worldknowledge.load_rehearsal()
    assert len(rehearsal) == worldknowledge.N_REHEARSAL == 80
    assert len(worldknowledge.load_rehearsal(5)) == 5
    assert all(r.question.endswith("?") and r.answer for r in rehearsal)
    evaluated = worldknowledge.load_real_authors() + worldknowledge.load_world_facts()
    stop = set("who what which is the of a in by was for on to and how many did known famous first are at as "
               "from with that this its be".split())

    def words(text: str) -> set[str]:
        return {w for w in re.findall(r"[a-z]+", text.lower()) if w not in stop and len(w) > 2}

    # No rehearsal question is (nearly) one of the evaluated questions: at most 70 % shared words.
    for r in rehearsal:
        for e in evaluated:
            shared = words(r.question) & words(e.question)
            assert len(shared) <= 0.7 * len(words(r.question)), (r.question, e.question)
    # The book questions ask about writers the evaluation never asks about: no surname of theirs
    # and no title of theirs is in an evaluated question or its answer.
    books = rehearsal[48:]
    assert all(r.question.startswith(("Who", "Which")) for r in books)
    asked = " ".join(f"{e.question} {e.answer}" for e in evaluated).lower()
    for r in books:
        surname = r.answer.split()[-1].lower()
        titles = r.question.lower().split("'")[1:2]
        assert not re.search(rf"\b{re.escape(surname)}\b", asked) and not any(t in asked for t in titles), r


def test_bad_configs_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="forget01, forget05, forget10"):
        build_fictional(forget="forget99")
    # 3 people, 2 holdout: forget10 = max(1, round(0.1)) = 1, so 2 + 1 = 3 leaves no retain
    with pytest.raises(ConfigError, match="no retain"):
        build_fictional(n_people=3, n_holdout=2)
    with pytest.raises(ConfigError):
        build_fictional(n_world=-1)
    assert forget_count(36, "forget05") == 2


def test_save_load_round_trip(task: UnlearningTask, tmp_path) -> None:
    loaded = UnlearningTask.load(task.save(tmp_path / "benchmark"))
    assert loaded == task


def test_registered_lazily() -> None:
    assert {"fictional", "tofu", "muse"} <= set(BENCHMARKS.names())
    assert BENCHMARKS.get("fictional").builder is build_fictional


@pytest.mark.parametrize(
    ("loader", "content", "message"),
    [
        ("load_rehearsal", '{"question": "Q?", "answer": "A"}\nnot json\n', r"line 2: invalid JSON"),
        ("load_rehearsal", '\n{"question": "Q?"}\n', r"line 2: missing field 'answer'"),
        ("load_real_authors", '{"question": "Q?", "answer": "A"}\n', r"line 1: missing field 'perturbed_answer'"),
        ("load_world_facts", '{"question": "Q?", "answer": "A", "perturbed_answer": "B"}\n', r"line 1: .* list of strings"),
    ],
)
def test_a_damaged_vendored_file_names_its_line(tmp_path, monkeypatch, loader, content, message):
    """The general-knowledge and TOFU world-knowledge files share one reader and its errors."""
    from obliviate.errors import DataError

    bad = tmp_path / "bad.jsonl"
    bad.write_text(content, encoding="utf-8")
    monkeypatch.setattr(worldknowledge, "_resource", lambda name, folder=(): bad)
    with pytest.raises(DataError, match=message):
        getattr(worldknowledge, loader)()
    assert len(getattr(worldknowledge, loader)(limit=0)) == 0
