"""Attack a finished run: does its forgetting hold?

``obliviate attack --run RUN --attack relearn,quantize`` and ``ob.attack("RUN", "relearn")``
share this module. :func:`plan_attack` checks everything before a model loads: the run folder and
its model, the benchmark it was evaluated on (content fingerprint), the retain-only model's run and
model, every attack's options and whether it can run on the task. :func:`run_attack` then, for
each attack, attacks the unlearned model and the retain-only model alike, evaluates the
benchmark's per-item forget metrics on what each attack hands back, stores both in
``RUN/run.json`` under ``attacks[LABEL]`` (atomically, one attack at a time, so an interrupted
battery resumes where it stopped) and recomputes the per-item verdict
(:mod:`obliviate.attacks.verdict`) under ``attack_verdict``.

The canonical (unattacked) scores are the run's own stored metrics and the reference run's.
An attack already stored with the same options, model and benchmark is not run again; with other
options it is refused unless ``overwrite``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.attacks.base import Attack, AttackContext
from obliviate.attacks.verdict import CANONICAL, KNOWLEDGE_METRICS, judge
from obliviate.errors import ConfigError
from obliviate.record import RunRecord, identity_digest, run_file
from obliviate.record.recorder import Recorder
from obliviate.runs.checks import check_evaluated, check_loaded_weights


@dataclass
class AttackRequest:
    """Everything ``obliviate attack`` and :func:`obliviate.attack` take, declared once."""

    run: str = ""  # the run folder (evaluated; its model in RUN/model)
    attacks: list[str] = field(default_factory=list)  # attack names (relearn,quantize) or all
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per attack, its options
    reference: str | None = None  # the retain-only model's run (default: the run's reference)
    reference_model: str | None = None  # the retain-only model's folder (default: its run's model)
    model: str | None = None  # the model to attack (default: RUN/model)
    benchmark: str | None = None  # the benchmark folder (default: the one the run records)
    verdict_metric: str | None = None  # per-item score of the verdict (default: forget/prob)
    quantile: float = 0.95  # the retain-only model's quantile an item must exceed to show a fact
    seed: int = 0  # seeds every attack
    overwrite: bool = False  # replace attacks stored with other options

    def validate(self) -> None:
        if not self.run:
            raise ConfigError("name the run to attack (--run RUN, the folder of an evaluated run)")


def plan_request(request: AttackRequest) -> AttackPlan:
    """:func:`plan_attack` for a typed request."""
    attacks: str | list[str] = "all" if request.attacks == ["all"] else request.attacks
    return plan_attack(
        request.run, attacks, request.options, reference=request.reference,
        reference_model=request.reference_model, model=request.model, benchmark=request.benchmark,
        verdict_metric=request.verdict_metric, quantile=request.quantile, seed=request.seed,
        overwrite=request.overwrite,
    )


@dataclass
class AttackPlan:
    """A checked attack run: what to attack, with what, and where the results go."""

    run_dir: Path
    record: RunRecord
    task: Any
    attacks: list[Attack]
    model: str
    reference_record: RunRecord | None
    reference_model: str | None
    options: Any  # EvalOptions: the run's own evaluation settings
    keys: list[str]
    verdict_key: str
    quantile: float = 0.95
    seed: int = 0
    overwrite: bool = False
    identity: dict[str, Any] = field(default_factory=dict)


def _model_folder(path: Path) -> bool:
    return (path / "config.json").is_file()


def _eval_model(record: RunRecord, base: Path) -> str | None:
    """The folder of the model a run's evaluation scored, when it still exists."""
    src = record.eval_info.model or record.model_info.output
    if not src:
        return None
    for cand in (Path(src).expanduser(), base / src):
        if _model_folder(cand):
            return str(cand.resolve())
    return None


def attack_keys(record: RunRecord, task: Any) -> list[str]:
    """The run's stored per-item knowledge metrics on the forget split, the ones an attack re-runs."""
    keys = []
    for key in record.metrics:
        split, _, name = key.rpartition("/")
        if split == "forget" and name in KNOWLEDGE_METRICS + ("truth_ratio",) and record.item_ids(key):
            keys.append(key)
    if not keys:
        raise ConfigError(
            f"the run holds no per-item forget metric to compare with (forget/rouge, forget/prob, ...): "
            f"evaluate it first (obliviate eval --model RUN/model --benchmark B --reference RETAIN_RUN --out RUN) "
            f"on a benchmark with QA forget items ({task.name!r} has none)"
        )
    return sorted(keys)


def choose_attacks(attacks: str | list[str] | None, options: Any) -> list[Attack]:
    """The attacks to run with their options, checked (names, options, stored labels)."""
    from obliviate.attacks import ATTACKS, BATTERY
    from obliviate.attacks.base import resolve_attack

    if options is not None and not isinstance(options, dict):
        raise ConfigError(f"attack options map each attack to its options ({{'relearn': {{'steps': 50}}}}), not {options!r}")
    for name, opts in (options or {}).items():
        if not isinstance(opts, dict):
            raise ConfigError(f"the options of attack {name!r} are a mapping such as {{'steps': 50}}, not {opts!r}")
    options = {k: dict(v) for k, v in (options or {}).items()}
    if attacks is None or attacks == "" or attacks == []:
        raise ConfigError(f"name the attacks (--attack relearn,quantize) or use --all; choices: {', '.join(ATTACKS.names())}")
    if attacks == "all":
        chosen = [(name, {**opts, **options.get(name, {})}) for name, opts in BATTERY]
    else:
        names = [a.strip() for a in attacks.split(",")] if isinstance(attacks, str) else list(attacks)
        chosen = [(ATTACKS.canonical(n), options.get(n, options.get(ATTACKS.canonical(n), {}))) for n in names if n]
        if not chosen:
            raise ConfigError(f"--attack {attacks!r} names no attack; choices: {', '.join(ATTACKS.names())} (or --all)")
    for key in options:
        if ATTACKS.canonical(key) not in {n for n, _ in chosen}:
            raise ConfigError(f"options given for attack {key!r}, which is not among those to run ({', '.join(n for n, _ in chosen)})")
    built = [resolve_attack(n, o) for n, o in chosen]
    for a in built:
        if hasattr(a.config, "validate"):
            a.config.validate()
    labels = [a.label for a in built]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two attacks would be stored under the same name ({', '.join(labels)}); run them separately")

    return built


def plan_attack(
    run: str | os.PathLike,
    attacks: str | list[str] | None,
    options: dict[str, dict[str, Any]] | None = None,
    *,
    reference: str | os.PathLike | None = None,
    reference_model: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
    benchmark: str | os.PathLike | None = None,
    verdict_metric: str | None = None,
    quantile: float = 0.95,
    seed: int = 0,
    overwrite: bool = False,
) -> AttackPlan:
    """Check an attack run before anything loads.

    Args:
        run: the run folder (its run.json must hold an evaluation).
        attacks: names (``"relearn,quantize"``, a list) or ``"all"`` for the standard battery.
        options: per attack name, its options (``{"relearn": {"steps": 50}}``).
        reference: the retain-only model's run (default: the one the run was evaluated against).
        reference_model: the retain-only model (default: the model that run evaluated).
        model: the model to attack (default: ``RUN/model``, else the model the run evaluated).
        benchmark: the benchmark (default: the one the run recorded); its content must match.
        verdict_metric: the per-item score of the verdict (default ``forget/prob``, the answer's
            probability, else ``forget/rouge``: on small models ROUGE-L of a wrong but well-formed
            guess is often 0.3, which blurs the retain-only model's spread).
        quantile: the retain-only model's quantile an item must exceed to show the fact.
        seed: seeds every attack.
        overwrite: replace attacks stored with other options.
    """
    from obliviate.config import build
    from obliviate.metrics.base import EvalOptions
    from obliviate.runs.plan import load_task

    run_dir = Path(run).expanduser()
    if not run_file(run_dir).is_file():
        raise ConfigError(f"--run {run_dir}: no run.json there; give a run folder made by obliviate unlearn/eval")
    run_dir = run_file(run_dir).parent.resolve()
    record = RunRecord.load(run_dir)
    if not record.metrics:
        raise ConfigError(
            f"run {run_dir} holds no metrics: evaluate it first (obliviate eval --model {run_dir}/model "
            "--benchmark B --reference RETAIN_RUN --out RUN), so that the attacks have scores to compare with"
        )
    if not 0.5 <= quantile < 1.0:
        raise ConfigError(f"--quantile must be in [0.5, 1), got {quantile}")

    built = choose_attacks(attacks, options)  # every attack and its options, before the benchmark loads

    spec = str(benchmark) if benchmark is not None else record.benchmark_info.spec
    if not spec:
        raise ConfigError(f"run {run_dir} does not record its benchmark: pass --benchmark (the prepared folder it was evaluated on)")
    task, _ = load_task(spec, {})
    want = record.eval_identity.get("benchmark") or record.benchmark_info.fingerprint
    got = task.fingerprint()
    if want and want != got:
        raise ConfigError(
            f"benchmark {spec} is not the one run {run_dir} was evaluated on (content fingerprint {got[:12]} vs "
            f"{str(want)[:12]}): pass --benchmark with the prepared folder the run used"
        )
    for a in built:
        a.check(task)
    keys = attack_keys(record, task)
    vkey = verdict_metric or next((k for k in ("forget/prob", "forget/rouge") if k in keys), keys[0])
    if vkey not in keys:
        raise ConfigError(f"--verdict-metric {vkey!r} is not among the run's per-item forget metrics: {', '.join(keys)}")

    target = _target(record, run_dir, model)
    check_evaluated(record, target, f"run {run_dir}", "--model")
    ref_record, ref_model = _reference(record, run_dir, reference, reference_model)
    opts_data = record.eval_info.options
    eval_options = build(EvalOptions, {k: v for k, v in opts_data.items() if k in {f.name for f in dataclasses.fields(EvalOptions)}}, "eval")
    plan = AttackPlan(run_dir, record, task, built, str(target.resolve()), ref_record, ref_model, eval_options, keys,
                      vkey, quantile, seed, overwrite)
    plan.identity = {"model": plan.model, "reference_model": ref_model, "benchmark": got, "seed": seed}
    for a in built:  # stored with other options: refuse before any model loads
        stored = record.attacks.get(a.label)
        if stored and stored.identity != attack_identity(plan, a) and not overwrite:
            raise ConfigError(
                f"run {run_dir} already holds attack {a.label!r} with other options, model or seed; pass --overwrite to replace it"
            )
    return plan


def _target(record: RunRecord, run_dir: Path, model: str | os.PathLike | None) -> Path:
    """The model folder to attack: --model, else RUN/model, else the model the run evaluated."""
    target = Path(model).expanduser() if model is not None else run_dir / "model"
    if not _model_folder(target):
        found = _eval_model(record, run_dir) if model is None else None
        if found is None:
            raise ConfigError(f"no model to attack: {target} holds no config.json; pass --model (the unlearned model's folder)")
        target = Path(found)

    return target


def _reference(
    record: RunRecord, run_dir: Path, reference: str | os.PathLike | None, reference_model: str | os.PathLike | None
) -> tuple[RunRecord | None, str | None]:
    """The retain-only model's run and model folder (both checked), or None when there is none."""
    ref_record: RunRecord | None = None
    ref_model: str | None = None
    ref_spec = reference if reference is not None else record.eval_info.reference
    if ref_spec and ref_spec != "given":
        ref_path = Path(str(ref_spec)).expanduser()
        if reference is None and not ref_path.is_absolute() and not run_file(ref_path).is_file():
            # records written before references were stored absolute name it from the evaluation's
            # working directory: look for it from the folders above the run
            above = [a / ref_path for a in run_dir.resolve().parents if run_file(a / ref_path).is_file()]
            ref_path = above[0] if above else ref_path
        if not run_file(ref_path).is_file():
            raise ConfigError(f"reference run {ref_path} has no run.json; pass --reference RETAIN_RUN (the retain-only model's run)")
        ref_record = RunRecord.load(ref_path)
        ref_model = str(Path(reference_model).expanduser().resolve()) if reference_model else _eval_model(ref_record, run_file(ref_path).parent)
        if ref_model is None or not _model_folder(Path(ref_model)):
            raise ConfigError(
                f"cannot find the retain-only model that {ref_path} evaluated: pass --reference-model (its folder, "
                "e.g. prep/retain); the verdict compares each attack with the same attack on it"
            )
        check_evaluated(ref_record, Path(ref_model), f"reference run {ref_path}", "--reference-model")
    return ref_record, ref_model


def attack_identity(plan: AttackPlan, attack: Attack) -> dict[str, Any]:
    """What makes a stored attack reusable: the attack, its options, the models, benchmark, seed, eval options."""
    ident = {"attack": attack.name, "options": dataclasses.asdict(attack.config), **plan.identity,
             "eval": dataclasses.asdict(plan.options)}
    return {**ident, "digest": identity_digest(ident)}


def _evaluate(attacked: Any, keys: list[str], options: Any) -> dict[str, dict[str, Any]]:
    from obliviate.runs.evaluate_run import evaluate

    if attacked.results is not None:
        return {k: dict(v) for k, v in attacked.results.items()}
    # the attacked model is already placed: the run's device map applied to loading it, not to this
    placed = dataclasses.replace(options, device_map="none")
    res = evaluate(attacked.model, attacked.task, plan=keys, options=placed)
    return {k: res.metrics[k] for k in keys if k in res.metrics}


def verdict(record: RunRecord, reference: RunRecord | None, key: str, q: float) -> dict[str, Any] | None:
    """The per-item verdict from a run's stored metrics and attacks (None without a reference)."""
    if reference is None or key not in reference.metrics:
        return None
    conditions: dict[str, Any] = {CANONICAL: (record.metrics.get(key), reference.metrics[key], None)}
    for label, stored in record.attacks.items():
        unlearned = stored.unlearned or {}
        k = key if key in unlearned else next(iter(unlearned), None)
        if k is None or not stored.reference:
            continue
        conditions[label] = (unlearned.get(k), stored.reference.get(k), stored.item_of)
    out = judge(conditions, q)
    out["metric"] = key
    return out


def run_attack(plan: AttackPlan, *, progress: bool = True, say: Any = None) -> RunRecord:
    """Run every attack of ``plan`` on the unlearned and the retain-only model; store them in the run."""
    from obliviate.models.io import load_model

    say = say or (lambda msg: None)
    models: dict[str, Any] = {}
    for attack in plan.attacks:
        ident = attack_identity(plan, attack)
        stored = RunRecord.load(plan.run_dir).attacks.get(attack.label)
        if stored and stored.identity == ident and not plan.overwrite:
            say(f"{attack.label}: already in the run, kept")
            continue
        entry: dict[str, Any] = {"attack": attack.name, "kind": attack.kind, "options": ident["options"], "identity": ident}
        started = time.perf_counter()
        for role, spec in (("unlearned", plan.model), ("reference", plan.reference_model)):
            if spec is None:
                entry[role] = None
                continue
            if role not in models:
                models[role] = load_model(spec)
                check_loaded_weights(models[role], plan.record if role == "unlearned" else plan.reference_record, role)
            say(f"{attack.label}: attacking the {role} model")
            t0 = time.perf_counter()
            ctx = AttackContext(models[role], plan.task, plan.options.prompt_format, plan.seed, role, progress)
            attacked = attack.apply(ctx)
            entry[role] = _evaluate(attacked, plan.keys, plan.options)
            entry[f"{role}_details"] = attacked.details
            entry[f"{role}_seconds"] = round(time.perf_counter() - t0, 3)
            if role == "unlearned":
                entry["items"] = attacked.items
                entry["item_of"] = attacked.details.get("item_of")
            del attacked
        entry["seconds"] = round(time.perf_counter() - started, 3)

        def store(data: dict[str, Any], label: str = attack.label, entry: dict[str, Any] = entry) -> dict[str, Any]:
            attacks = {**RunRecord(data).data_of("attacks"), label: entry}
            verdict_now = verdict(RunRecord({**data, "attacks": attacks}), plan.reference_record, plan.verdict_key,
                                  plan.quantile)
            return {**data, "attacks": attacks, "attack_verdict": verdict_now}

        Recorder(plan.run_dir).update(store)
    record = RunRecord.load(plan.run_dir)
    if record.attack_verdict is None and plan.reference_record is not None:
        record = RunRecord(Recorder(plan.run_dir).update(
            lambda d: {**d, "attack_verdict": verdict(RunRecord(d), plan.reference_record, plan.verdict_key, plan.quantile)}
        ), run_file(plan.run_dir))
    return record


def summary_lines(record: RunRecord, keys: list[str]) -> list[str]:
    """Each attack's aggregates beside the canonical ones, and the verdict's counts."""
    lines = []
    for label, stored in record.attacks.items():
        parts = []
        for k in keys:
            after = RunRecord({"metrics": stored.unlearned or {}}).aggregate(k)
            ref = RunRecord({"metrics": stored.reference}).aggregate(k) if stored.reference else None
            if after is None:
                continue
            parts.append(f"{k} {_fmt(record.aggregate(k))} -> {_fmt(after)}"
                         + (f" (retain-only {_fmt(ref)})" if ref is not None else ""))
        lines.append(f"{label}: " + ("; ".join(parts) if parts else ", ".join(stored.unlearned or {})))
    v = record.attack_verdict
    if v:
        c = v.counts
        lines.append(f"verdict on {v.metric} ({len(v.items)} items, {len(v.conditions) - 1} attacks): "
                     f"{c.get('removed', 0)} removed, {c.get('suppressed', 0)} suppressed, {c.get('kept', 0)} kept")
    return lines


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:.3f}"
