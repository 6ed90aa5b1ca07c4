"""``obliviate demo``: the embedded default end to end.

1. Prepare (or reuse from the cache) the fictional benchmark, the target model fine-tuned on
   forget + retain, and the retain-only oracle, on SmolLM2-135M.
2. Evaluate the target and the oracle with the full plan (cached with the prepared models).
3. Run each chosen unlearning method on a fresh copy of the target and evaluate it.
4. Print a comparison table and write ``report.html`` (plus ``report.json`` and ``report.csv``).

The cache key covers the model, the benchmark version and options, and the fine-tuning recipe, so
a change of any of them prepares anew.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.config import to_dict
from obliviate.errors import ConfigError
from obliviate.files import write_atomic
from obliviate.record import identity_digest

PROFILES: dict[str, dict[str, Any]] = {
    # fast: every forget and holdout item, 20 items of the retain and world-fact splits but all 100
    # real-author questions (on 20, model utility, a harmonic mean, rested on one or two right
    # answers and moved 0.17-0.29 with one of them), short generations, and no GradNorm attack: it
    # costs a backward pass per item (9 s of a 30 s evaluation on 2 cores at 8 members and 8
    # non-members, an AUC too few items to tell anything); full runs it.
    "fast": {"max_items": 20, "uncapped": "real_authors", "max_new_tokens": 32, "gradnorm_items": 0},
    # full: every item of every split, TOFU-length generations for short answers.
    "full": {"max_items": 0, "max_new_tokens": 64, "gradnorm_items": 32},
}
# Two methods fit the warm demo's 1.5 minutes on 2 cores (74 s; simnpo, a third, adds about 35 s):
# grad_diff forgets most at the target's utility, npo less at about the same; --methods grad_diff,npo,simnpo adds simnpo.
DEFAULT_METHODS = ("grad_diff", "npo")
# Shorter CPU schedules than the methods' own defaults: 2 epochs (6 steps of batch 8), so that
# the methods and their evaluations fit the warm demo's budget on 2 cores (figures: README,
# bench/). The rates were chosen on two variants of the prepared models (trained with eager and
# with fused attention: different rounding, as on another machine), FQ / MU against the target's:
#   grad_diff 2e-4: 416x / +5% (first); 2.5e-4: 8500x / 0% (first), 18000x / -11% (second);
#             3e-4: 8500x / -13% (first)
#   npo 1.25e-4: 117x (second); 1.5e-4: 117x / -5% (first); 2e-4: 1290x / -2% (first), 3500x / -16% (second)
# Another machine gave 3500x at grad_diff 2e-4: a machine moves a method about one rate step.
DEMO_TRAIN: dict[str, dict[str, Any]] = {
    "grad_diff": {"epochs": 2, "lr": 2.5e-4},
    "npo": {"epochs": 2, "lr": 2e-4},
    "simnpo": {"epochs": 2, "lr": 3e-4},
}
# Method options of the demo (the user's --METHOD.option flags win). SimNPO's forget weight is 1
# instead of open-unlearning's 0.125 (official TOFU: 0.1375): at the official weight SimNPO needs
# its full schedule (8 epochs) to forget, more than the demo's few steps.
DEMO_METHOD: dict[str, dict[str, Any]] = {
    "simnpo": {"c_npo": 1.0},
}


@dataclass
class DemoConfig:
    """Settings of ``obliviate demo``."""

    methods: tuple[str, ...] = DEFAULT_METHODS  # unlearning methods to compare
    forget: str = "forget10"  # forget split of the fictional benchmark: forget01, forget05 or forget10
    profile: str = "fast"  # evaluation depth: fast (subsets of the utility splits) or full
    model: str = "smollm2-135m"  # the model to prepare and unlearn
    n_people: int = 18  # size of the fictional benchmark (18 people: 2 forget, 14 retain, 2 holdout)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-method options: --npo.beta 0.2, --npo.train.lr 1e-4

    def train_options(self, method: str) -> dict[str, Any]:
        """The ``train`` options given for a method (``--npo.train.lr 1e-4``)."""
        return dict(self.method_options.get(method, {}).get("train", {}) or {})

    def unlearn_options(self, method: str) -> dict[str, Any]:
        """A method's unlearning options (``method``, ``train``): the demo's settings, the user's over them."""
        given = {k: v for k, v in self.method_options.get(method, {}).items() if k != "train"}
        tree: dict[str, Any] = {}
        method_tree = {**DEMO_METHOD.get(method, {}), **given}
        train = {**DEMO_TRAIN.get(method, {}), **self.train_options(method)}
        if method_tree:
            tree["method"] = method_tree
        if train:
            tree["train"] = train
        return tree

    def validate(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(f"profile must be one of {', '.join(PROFILES)}, not {self.profile!r}")
        if not self.methods:
            raise ConfigError("choose at least one method (--methods npo,simnpo)")
        unknown = set(self.method_options) - set(self.methods)
        if unknown:
            raise ConfigError(
                f"options given for {', '.join(sorted(unknown))}, which is not among --methods {','.join(self.methods)}"
            )


def cache_key(cfg: DemoConfig, prep_config: Any) -> str:
    from obliviate.benchmarks.fictional import VERSION

    identity = {"model": cfg.model, "forget": cfg.forget, "n_people": cfg.n_people, "version": VERSION,
                "prep": to_dict(prep_config)}
    return identity_digest(identity)[:12]


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Stages:
    """Numbered stage messages that say how long is left.

    The estimate of a stage is its time in the last demo run with the same evaluation settings
    (``previous``), else the mean of the stages of its kind already done in this run (the second
    method's unlearning takes about as long as the first's); no estimate is shown while any
    remaining stage has none. ``measured`` collects each stage's seconds.
    """

    def __init__(self, say: Any, names: list[str], previous: dict[str, float] | None = None) -> None:
        self.say = say
        self.names = names
        self.previous = dict(previous or {})
        self.fixed: dict[str, float] = {}
        self.measured: dict[str, float] = {}
        self._current: str | None = None
        self._started = 0.0

    def expect(self, name: str, seconds: float) -> None:
        """Fix the estimate of a stage that is known to differ (a cached evaluation takes no time)."""
        self.fixed[name] = seconds

    def estimate(self, name: str) -> float | None:
        """The expected seconds of a stage, or None when nothing tells."""
        if name in self.fixed:
            return self.fixed[name]
        if name in self.previous:
            return self.previous[name]
        kind = name.split("_")[0]
        same = [v for k, v in self.measured.items() if k.split("_")[0] == kind and k not in self.fixed]
        return sum(same) / len(same) if same else None

    def start(self, name: str, text: str) -> None:
        self.finish()
        i = self.names.index(name)
        left = [self.estimate(n) for n in self.names[i:]]
        eta = "" if any(v is None for v in left) else f" [dim](about {_clock(sum(left))} left)[/]"  # type: ignore[arg-type]
        self.say(f"[bold cyan]»[/] {i + 1}/{len(self.names)} {text}{eta}")
        self._current, self._started = name, time.perf_counter()

    def finish(self) -> None:
        if self._current is not None:
            self.measured[self._current] = time.perf_counter() - self._started
            self._current = None


def run_demo(cfg: DemoConfig, out: Path, *, say: Any = print, progress: bool = True) -> dict[str, Any]:
    """Run the demo; returns the comparison rows and the report path."""
    from obliviate.evaluation import is_complete
    from obliviate.metrics.base import EvalOptions
    from obliviate.models.io import load_model
    from obliviate.runs import evaluate, plan_unlearn, resolve_options, run_unlearn, summary_lines
    from obliviate.runs.checks import check_output
    from obliviate.runs.prepare import prepare, prepare_complete, prepare_config
    from obliviate.runtime import cache_root

    cfg.validate()
    out = check_output(out)  # a file given as --out fails here, before anything loads

    for m in cfg.methods:  # every method's options, before anything heavy runs
        resolve_options(m, cfg.unlearn_options(m))
    prep_cfg = prepare_config(cfg.model, options={"benchmark": {"forget": cfg.forget, "n_people": str(cfg.n_people)}})
    key = cache_key(cfg, prep_cfg)
    prep_dir = cache_root() / "demo" / f"{cfg.model}-{cfg.forget}-{key}"
    out.mkdir(parents=True, exist_ok=True)
    options = EvalOptions(**PROFILES[cfg.profile], prompt_format=prep_cfg.prompt_format)
    # Cached evaluations are keyed by their options, so a change of profile settings re-evaluates.
    options_key = identity_digest(to_dict(options))[:8]
    evals = prep_dir / f"eval-{cfg.profile}-{options_key}"
    runs = out / "runs"
    cold = not prepare_complete(prep_dir)
    names = (["prepare"] if cold else []) + ["eval_retain", "eval_target"]
    names += [f"{stage}_{m}" for m in cfg.methods for stage in ("unlearn", "eval")] + ["report"]
    stages = Stages(say, names, {"report": 1.0, **_read_timings(evals / TIMINGS_FILE)})
    t0 = time.perf_counter()

    if cold:
        stages.start("prepare", f"preparing the benchmark and fine-tuning {cfg.model} twice (target, retain-only); cached for next time")
        prepare("fictional", cfg.model, prep_dir, prep_cfg, resume=True, progress=progress, say=say)
    else:
        say(f"using the prepared models cached in {prep_dir}")
    from obliviate.data.task import UnlearningTask

    task = UnlearningTask.load(prep_dir / "benchmark")
    task.source = str(prep_dir / "benchmark")  # what the unlearning runs record as their benchmark
    # The oracle first: its results are the reference of every other model.
    done = {"retain": is_complete(task, evals / "retain")}
    done["target"] = done["retain"] and is_complete(task, evals / "target", reference=evals / "retain")
    for role in ("retain", "target"):
        if done[role]:
            stages.expect(f"eval_{role}", 0.0)
        stages.start(f"eval_{role}", f"evaluating the {role} model" + (" (cached)" if done[role] else ""))
        cached = evals / role
        reference = None if role == "retain" else evals / "retain"
        if not done[role]:  # a complete cached evaluation needs no model
            evaluate(prep_dir / role, task, reference=reference, out=cached, options=options)  # as `obliviate eval`
        _record_role(cached, role, cfg.model, prep_dir)
        shutil.copytree(cached, runs / role, dirs_exist_ok=True)

    target = None  # loaded once; each method unlearns a copy
    for name in cfg.methods:
        stages.start(f"unlearn_{name}", f"unlearning with {name}")
        run_dir = runs / name
        target = target or load_model(prep_dir / "target")
        plan = plan_unlearn(target, task, name, cfg.unlearn_options(name), out=run_dir, overwrite=True)
        run = run_unlearn(plan, target, progress=progress)  # the same code path as `obliviate unlearn`
        for line, _ in summary_lines(run):
            say(line)
        stages.start(f"eval_{name}", f"evaluating {name}")
        # The unlearned model is evaluated in memory (it was also saved to RUN/model).
        evaluate(run.model, task, reference=runs / "retain", out=run_dir, options=options)
        del run

    stages.start("report", "writing the report")
    from obliviate.reporting import make_report

    written = make_report([runs / "target", runs / "retain", *(runs / m for m in cfg.methods)], out / "report.html",
                          benchmark=prep_dir / "benchmark", title="obliviate demo: unlearning on SmolLM2-135M")
    stages.finish()
    timings = {"prepare": 0.0, **stages.measured, "total": time.perf_counter() - t0}
    write_atomic(out / TIMINGS_FILE, json.dumps(timings, indent=1))
    # Kept beside the cached evaluations as the next run's estimates (a cached evaluation's
    # near-zero time would mislead a fresh one).
    estimates = {**stages.previous, **{k: v for k, v in stages.measured.items() if k not in stages.fixed}}
    write_atomic(evals / TIMINGS_FILE, json.dumps(estimates, indent=1))
    return {"report": written["html"], "runs": runs, "timings": timings, "prep_dir": prep_dir}


TIMINGS_FILE = "demo-timings.json"


def _read_timings(path: Path) -> dict[str, float]:
    """Stage seconds of the last run (empty when there is none or it is unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, int | float)} if isinstance(data, dict) else {}


def _record_role(run_dir: Path, role: str, model: str, prep_dir: Path) -> None:
    from obliviate.record import Recorder

    def change(data: dict[str, Any]) -> dict[str, Any]:
        data["role"] = role
        data.setdefault("model", {"name": role, "base": model, "path": str(prep_dir / role)})
        summary = json.loads((prep_dir / "prepare.json").read_text(encoding="utf-8"))
        data.setdefault("timings", {}).update({k: v for k, v in summary.get("timings", {}).items() if k.startswith(role)})
        return data

    Recorder(run_dir).update(change)
