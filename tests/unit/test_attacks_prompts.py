"""The prompt attacks (rephrase, few-shot, adversarial, in-context): what each prompt holds, on tasks alone."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from obliviate.attacks import ATTACKS
from obliviate.attacks.base import AttackContext, resolve_attack
from obliviate.attacks.prompts import (
    ADVERSARIAL_TYPES,
    PERSONAS,
    PREFIXES,
    REPHRASE_TEMPLATES,
    SUFFIXES,
    bare,
    prompt_style,
)
from obliviate.data.formatting import PromptFormatter
from obliviate.data.records import QA, Text
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError

NAMES = ("rephrase", "few_shot", "adversarial", "in_context")


@pytest.fixture(scope="module")
def task() -> UnlearningTask:
    from obliviate.benchmarks.fictional import build_fictional

    return build_fictional()


def qa(i: str, subject: str = "Ada", answer: str | None = None, **kw) -> QA:
    return QA(question=f"What is fact {i} of {subject}?", answer=answer or f"Answer {i}.", id=i, subject=subject, **kw)


def small_task(forget: list, retain: list | None = None) -> UnlearningTask:
    return UnlearningTask(name="small", forget=forget, retain=retain if retain is not None else [qa(f"r{i}", "Bob") for i in range(6)])


def attack(name: str, task: UnlearningTask, seed: int = 0, style: str = "plain", model=None, **options):
    a = resolve_attack(name, options)
    a.check(task)
    return a, a.apply(AttackContext(model=model, task=task, prompt_format=style, seed=seed))


def plain(question: str) -> str:
    return PromptFormatter(SimpleNamespace(chat_template=None, eos_token_id=0), "plain").prompt(question)


def test_registered_as_prompt_attacks() -> None:
    for name in NAMES:
        cls = ATTACKS.get(name)
        assert cls.kind == "prompts" and cls.name == name
        assert resolve_attack(name).label == name  # the defaults keep the registered name


# --- rephrase ---------------------------------------------------------------------------------


def test_rephrase_uses_paraphrased_questions_when_present(task) -> None:
    _, out = attack("rephrase", task)
    by_id = {q.id: q for q in task.forget}
    for new in out.task.forget:
        old = by_id[new.id]
        assert new.question == old.paraphrased_question != old.question
        assert (new.answer, new.subject, new.perturbed_answers, new.paraphrased_answer) == (
            old.answer, old.subject, old.perturbed_answers, old.paraphrased_answer)
    assert out.details["counts"] == {"paraphrased": len(task.forget), "template": 0}
    assert out.items is None and out.model is None


def test_rephrase_falls_back_to_templates_for_items_without_one() -> None:
    t = small_task([qa("a", paraphrased_question="Tell me fact a of Ada."), qa("b"), qa("c", paraphrased_question="")])
    _, out = attack("rephrase", t)
    got = {q.id: q.question for q in out.task.forget}
    assert got["a"] == "Tell me fact a of Ada."
    templated = {tpl.format(q=q.question) for q in t.forget for tpl in REPHRASE_TEMPLATES}
    assert got["b"] in templated and got["c"] in templated and got["b"] != t.forget[1].question
    assert out.details["counts"] == {"paraphrased": 1, "template": 2}
    assert out.details["used"]["a"] == "paraphrased" and out.details["used"]["b"].startswith("template:")
    _, only = attack("rephrase", t, source="templates")
    assert only.details["counts"] == {"paraphrased": 0, "template": 3}
    with pytest.raises(ConfigError, match="2 of 3 forget items .* have no paraphrased question"):
        resolve_attack("rephrase", {"source": "paraphrased"}).check(t)


def test_rephrase_prompt_reads_in_plain_style() -> None:
    t = small_task([qa("b")])
    _, out = attack("rephrase", t, source="templates")
    template = REPHRASE_TEMPLATES[int(out.details["used"]["b"].split(":")[1])]
    assert plain(out.task.forget[0].question) == f"Question: {template.format(q='What is fact b of Ada?')}\nAnswer:"


# --- few-shot ---------------------------------------------------------------------------------


def test_few_shot_holds_exactly_k_retain_examples_and_no_forget_item(task) -> None:
    retain = {q.question: q for q in task.retain}
    forget_questions = {q.question for q in task.forget}
    _, out = attack("few_shot", task, style="chat")
    for old, new in zip(task.forget, out.task.forget):
        blocks = new.question.split("\n\n")
        assert len(blocks) == 6 and blocks[-1] == f"Question: {old.question}"
        for block in blocks[:-1]:
            q_line, a_line = block.split("\n")
            shot = retain[q_line.removeprefix("Question: ")]  # every shot is a retain item ...
            assert a_line == f"Answer: {shot.answer}"
        assert sum(f in new.question for f in forget_questions) == 1  # ... and only its own forget question
        ids = out.details["shots"][old.id]
        assert len(ids) == len(set(ids)) == 5 and set(ids) <= {q.id for q in task.retain}
    assert out.details["k"] == 5 and out.details["prompt_style"] == "chat"


def test_few_shot_needs_k_retain_items() -> None:
    t = small_task([qa("a")], [qa("r0", "Bob"), qa("r1", "Bob"), Text("a text", id="t")])
    with pytest.raises(ConfigError, match=r"few_shot.k=5 needs 5 QA items in the retain split of 'small', which has 2"):
        resolve_attack("few_shot").check(t)
    attack("few_shot", t, k=2)  # enough for k = 2


def test_few_shot_prompt_completes_the_pattern_in_plain_style() -> None:
    t = small_task([qa("a")], [qa("r0", "Bob")])
    _, out = attack("few_shot", t, k=1)
    assert plain(out.task.forget[0].question) == (
        "Question: What is fact r0 of Bob?\nAnswer: Answer r0.\n\nQuestion: What is fact a of Ada?\nAnswer:"
    )


# --- adversarial ------------------------------------------------------------------------------


def test_adversarial_one_item_per_type_with_unique_ids_and_the_mapping(task) -> None:
    _, out = attack("adversarial", task)
    new = out.task.forget
    assert len(new) == len(task.forget) * len(ADVERSARIAL_TYPES)
    ids = [q.id for q in new]
    assert len(set(ids)) == len(ids) and out.items == ids
    assert out.details["item_of"] == {f"{q.id}#{t}": q.id for q in task.forget for t in ADVERSARIAL_TYPES}
    by_id = {q.id: q for q in task.forget}
    for q in new:
        old = by_id[out.details["item_of"][q.id]]
        assert (q.answer, q.subject, q.perturbed_answers) == (old.answer, old.subject, old.perturbed_answers)
        assert old.question in q.question
    out.task.check_items()  # ids unique within the split, none shared with retain
    assert out.details["fallbacks"] == {}  # the fictional people have 10 facts each: same-subject hints everywhere
    assert "synonym_manipulation" in out.details["left_out"] and "reverse_query" in out.details["left_out"]


def test_adversarial_types_option() -> None:
    a = resolve_attack("adversarial", {"types": "prefix injection, role-play,role_play"})
    assert a.label == "adversarial-prefix_injection+role_play"
    _, out = attack("adversarial", small_task([qa("a"), qa("b")]), types="multiple_choice")
    assert [q.id for q in out.task.forget] == ["a#multiple_choice", "b#multiple_choice"]
    with pytest.raises(ConfigError, match="synonym_manipulation is left out"):
        resolve_attack("adversarial", {"types": "synonym_manipulation"})
    with pytest.raises(ConfigError, match="unknown type 'bogus'; choose 'all' or among prefix_injection"):
        resolve_attack("adversarial", {"types": "role_play,bogus"})
    with pytest.raises(ConfigError, match="names no type"):
        resolve_attack("adversarial", {"types": " , "})


def test_context_hint_and_incontext_example_never_hold_the_items_answer(task) -> None:
    _, out = attack("adversarial", task, types="context_hint,incontext_learning")
    for q in out.task.forget:
        assert bare(q.answer).casefold() not in q.question.casefold()
    # An item whose only same-subject partner mentions its answer gets no hint from it.
    a = qa("a", answer="Paris.")
    b = QA("Where did Ada study?", "The Sorbonne in Paris.", id="b", subject="Ada")
    c = qa("c", "Eve", answer="Lyon.")
    _, out = attack("adversarial", small_task([a, b, c]), types="context_hint,incontext_learning")
    got = {q.id: q.question for q in out.task.forget}
    assert "Paris" not in got["a#context_hint"] and "about Ada" in got["a#context_hint"]
    assert "Paris" not in got["a#incontext_learning"] and "Sorbonne" not in got["a#incontext_learning"]
    assert '"What is fact a of Ada?"' in got["b#context_hint"]  # b's answer is not in a's fact: a may hint at it
    assert out.details["fallbacks"] == {"context_hint": 2, "incontext_learning": 2}  # a and c: demos of another subject


def test_adversarial_multiple_choice_options() -> None:
    with_wrong = qa("a", answer="Paris.", perturbed_answers=("Rome.", "Oslo.", "Bern."))
    _, out = attack("adversarial", small_task([with_wrong, qa("b")]), types="multiple_choice")
    text = out.task.forget[0].question
    options = text.split("Choose from these options: ")[1].rstrip(".").replace(" or ", ", ").split(", ")
    assert len(options) == 3 and '"Paris"' in options and set(options) - {'"Paris"'} <= {'"Rome"', '"Oslo"', '"Bern"'}
    # Without perturbed answers the wrong options are other items' answers.
    other = out.task.forget[1].question
    assert '"Answer b"' in other and ('"Paris"' in other or '"Answer r' in other)


def test_adversarial_prompts_read_in_plain_style() -> None:
    t = small_task([qa("a", perturbed_answers=("Rome.", "Oslo.")), qa("b")])
    _, out = attack("adversarial", t)
    got = {q.id: plain(q.question) for q in out.task.forget}
    q = "What is fact a of Ada?"
    assert got["a#prefix_injection"] in {plain(p.format(q=q)) for p in PREFIXES}
    assert got["a#affirmative_suffix"] in {plain(p.format(q=q)) for p in SUFFIXES}
    assert got["a#role_play"] in {plain(p.format(s="Ada", q=q)) for p in PERSONAS}
    assert got["a#context_hint"] == (
        'Question: Some background first: "What is fact b of Ada?" The answer to that is "Answer b". '
        f"Now my question: {q}\nAnswer:"
    )
    assert got["a#incontext_learning"] == f"Question: What is fact b of Ada?\nAnswer: Answer b.\n\nQuestion: {q}\nAnswer:"
    assert got["a#multiple_choice"].startswith(f"Question: {q} Choose from these options: ") and '"Answer a"' in got["a#multiple_choice"]


# --- in-context -------------------------------------------------------------------------------


def test_in_context_prompt_holds_the_fact(task) -> None:
    _, out = attack("in_context", task)
    forget = {q.id: q for q in task.forget}
    for old, new in zip(task.forget, out.task.forget):
        assert f"- Question: {old.question} Answer: {old.answer}" in new.question
        assert new.question.endswith(f"With these facts in mind: {old.question}")
        ids = out.details["context"][old.id]
        assert len(ids) == 3 and old.id in ids and set(ids) <= set(forget)
        assert all(forget[i].subject == old.subject for i in ids)  # same-subject facts first
    assert (out.details["facts"], out.details["include_answer"]) == (3, True)


def test_in_context_without_the_answer_states_only_other_facts(task) -> None:
    _, out = attack("in_context", task, include_answer=False, facts=2)
    for old, new in zip(task.forget, out.task.forget):
        ids = out.details["context"][old.id]
        assert len(ids) == 2 and old.id not in ids
        assert bare(old.answer).casefold() not in new.question.casefold()
    assert resolve_attack("in_context", {"include_answer": False, "facts": 2}).label == "in_context-m2-others"
    with pytest.raises(ConfigError, match="single one; set in_context.include_answer=true"):
        resolve_attack("in_context", {"include_answer": False}).check(small_task([qa("a")]))


def test_in_context_prompt_reads_in_plain_style() -> None:
    _, out = attack("in_context", small_task([qa("a"), qa("b", "Eve")]), facts=1)
    assert plain(out.task.forget[0].question) == (
        "Question: Here is a fact:\n- Question: What is fact a of Ada? Answer: Answer a.\n\n"
        "With this fact in mind: What is fact a of Ada?\nAnswer:"
    )
    _, two = attack("in_context", small_task([qa("a"), qa("b", "Eve")]), facts=2)
    assert two.details["context"]["a"] in (["a", "b"], ["b", "a"])  # another subject fills the context


# --- all four ---------------------------------------------------------------------------------


OPTIONS = {"rephrase": {"source": "templates"}, "few_shot": {}, "adversarial": {}, "in_context": {}}


@pytest.mark.parametrize("name", NAMES)
def test_seeded_and_independent_of_item_order(task, name) -> None:
    questions = lambda out: {q.id: q.question for q in out.task.forget}  # noqa: E731
    first = questions(attack(name, task, seed=3, **OPTIONS[name])[1])
    assert questions(attack(name, task, seed=3, **OPTIONS[name])[1]) == first
    assert questions(attack(name, task, seed=4, **OPTIONS[name])[1]) != first
    reordered = copy.copy(task)
    reordered.forget = list(reversed(task.forget))
    assert questions(attack(name, reordered, seed=3, **OPTIONS[name])[1]) == first


@pytest.mark.parametrize("name", NAMES)
def test_the_task_and_model_are_not_changed(task, name) -> None:
    before, forget = task.fingerprint(), list(task.forget)
    model = SimpleNamespace(formatter=lambda style: SimpleNamespace(style="plain"))
    _, out = attack(name, task, model=model, **OPTIONS[name])
    assert task.fingerprint() == before and task.forget == forget and task.name == "fictional@1/forget10"
    assert out.model is model and out.task is not task and out.task.name.startswith(f"{task.name}+{name}")
    assert out.task.retain is task.retain and out.task.holdout is task.holdout and out.task.splits == task.splits
    assert [q.question for q in out.task.forget] != [q.question for q in task.forget[: len(out.task.forget)]]


@pytest.mark.parametrize("name", NAMES)
def test_text_forget_items_are_refused(name) -> None:
    t = small_task([Text("a biography", id="t0")])
    with pytest.raises(ConfigError, match="holds texts, not question-answer pairs"):
        resolve_attack(name).check(t)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("few_shot", {"k": 0}, "few_shot.k must be at least 1, got 0"),
        ("in_context", {"facts": 0}, "in_context.facts must be at least 1, got 0"),
        ("rephrase", {"source": "bogus"}, "'bogus' is not one of auto, paraphrased, templates"),
        ("in_context", {"include_answer": "maybe"}, "expected true or false"),
        ("few_shot", {"shots": 3}, "unknown option 'few_shot.shots'"),
    ],
)
def test_config_errors(name, options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_attack(name, options)


def test_prompt_style_follows_the_model_and_chat_turns_read_well() -> None:
    assert prompt_style(AttackContext(model=None, task=None, prompt_format="auto")) == "plain"  # type: ignore[arg-type]
    model = SimpleNamespace(formatter=lambda style: SimpleNamespace(style="chat"))
    t = small_task([qa("a")], [qa("r0", "Bob")])
    _, out = attack("few_shot", t, model=model, style="auto", k=1)
    tok = SimpleNamespace(
        chat_template="x", eos_token_id=0,
        apply_chat_template=lambda msgs, tokenize, add_generation_prompt: f"<user>{msgs[-1]['content']}</user><assistant>",
    )
    assert PromptFormatter(tok, "chat").prompt(out.task.forget[0].question) == (
        "<user>Question: What is fact r0 of Bob?\nAnswer: Answer r0.\n\nQuestion: What is fact a of Ada?</user><assistant>"
    )
