"""obliviate's TOFU-style evaluation against open-unlearning's TOFU evaluator: same models, same items.

Usage::

    python bench/eval_vs_reference.py PREP_DIR --open-unlearning OU_DIR --ou-python OU_VENV/bin/python \\
        [--precision fp32|bf16] [--threads N] [--max-items N] [--max-new-tokens 200] [--scope full|shared]

PREP_DIR is an ``obliviate prepare`` output (``target/``, ``retain/``, ``benchmark/``; the demo caches
one under ``~/.cache/obliviate/demo/<key>``). Both frameworks evaluate the retain-only model (their
retain logs, our reference run) and then the target against it, each as whole processes (interpreter
start, imports, model load, evaluation, writing), timed by the wall clock and by their CPU time
(user + system; unlike the wall time it does not count time a process spent stopped or waiting for
a core that another process held, so it is the steadier figure on a shared machine). The script prints both
frameworks' numbers side by side (aggregates, and per item where both keep them), the largest
per-item differences, whether the numbers are equal within a tolerance, and the time ratio.

What runs on each side:

- open-unlearning: ``src/eval.py`` with its default TOFU evaluator (``eval=tofu``: forget truth
  ratio, forget quality, forget Q_A Prob and ROUGE, model utility with its nine parts, privleak
  (Min-K% forget vs holdout) and extraction strength), at its default batch size (32) and greedy
  generation length (200 new tokens).
- obliviate: ``python -m obliviate eval`` on the prepared benchmark's own plan (``--scope full``,
  the default: the full fictional evaluation, which also runs five more membership-inference
  attacks, GradNorm included, exact memorization, fluency and the ``forget_bio`` VerbMem), or only
  the metrics open-unlearning computes (``--scope shared``), at its default batch sizes, with
  ``--eval.max_new_tokens`` set to the same generation length (200 unless ``--max-new-tokens``;
  then open-unlearning's four ROUGE metrics get the same value).

How the two are made to see the same thing:

- Items: the benchmark's splits are written as JSON-lines files in the layout of the HF dataset
  ``locuslab/TOFU`` (configs ``forget10_perturbed``, ``retain_perturbed``, ``holdout10``,
  ``real_authors_perturbed``, ``world_facts_perturbed``; keys question, answer,
  paraphrased_answer, perturbed_answer) in a folder ``WORK/locuslab/TOFU`` with a dataset card
  naming the configs, and open-unlearning runs with ``WORK`` as its working directory: its loader
  calls ``datasets.load_dataset("locuslab/TOFU", name=..., split="train")``, and ``datasets`` reads a
  path that names a local folder before it would ask the hub (which is set offline anyway). Every
  dataset of every metric, nested pre-computes included, reads these files with no config change.
  ``--max-items N`` writes the first N items of each split, and obliviate gets ``--eval.max_items N``.
- Prompt format: obliviate's ``plain`` format (``Question: Q\\nAnswer:`` then `` A`` and the end
  token, no BOS on SmolLM2). open-unlearning's model config (written to a temporary config folder
  added with ``hydra.searchpath``) has ``apply_chat_template: false`` and the start/end tags taken
  from obliviate's own ``PromptFormatter``; the answers in the data files carry the leading space
  that ``PromptFormatter.answer`` gives them (open-unlearning concatenates the prompt and the answer
  as they are). Both append and score the end token. The script counts the sequences whose joint
  tokenization (theirs) differs from prompt tokens + answer tokens (ours).
- Model files: transformers 4.45 (open-unlearning's pin) reads neither transformers 5's
  ``rope_parameters`` (it would silently fall back to RoPE theta 10000) nor its tokenizer class
  ``TokenizersBackend``. open-unlearning therefore gets a folder per model with the same weights
  and ``tokenizer.json`` (symbolic links), and a ``config.json`` / ``tokenizer_config.json`` with
  ``rope_theta``, ``torch_dtype`` and ``PreTrainedTokenizerFast`` written out.
- Precision and threads: fp32 by default on both (their ``torch_dtype: float32``, our
  ``--eval.precision fp32``); ``--precision bf16`` loads their model in bfloat16 and runs ours under
  bf16 autocast (not the same arithmetic: expect small per-item differences). Both processes get
  ``OMP_NUM_THREADS=--threads`` (default: every core), the CPU device, and an offline hub.

Setting up open-unlearning (it is not on PyPI; its pins are torch 2.4.1 / transformers 4.45.1)::

    git clone <locuslab/open-unlearning on GitHub> OU_DIR   # or a copy of its tree
    python3.11 -m venv OU_VENV
    OU_VENV/bin/pip install torch==2.13.0          # first: the CPU build obliviate uses
    OU_VENV/bin/pip install torch==2.13.0 transformers==4.45.1 huggingface-hub==0.29.1 \\
        numpy==2.2.3 hydra-core==1.3 hydra_colorlog==1.2.0 datasets==3.0.1 accelerate==0.34.2 \\
        rouge-score==0.1.2 scipy==1.14.1 scikit-learn==1.5.2 lm-eval==0.4.8
    DS_BUILD_OPS=0 OU_VENV/bin/pip install --no-build-isolation torch==2.13.0 deepspeed==0.15.4

Naming ``torch==2.13.0`` in every install keeps pip from replacing it. ``src/eval.py`` imports
deepspeed (through its trainer registry) and lm-eval (through its evaluator registry) even for a
TOFU evaluation; deepspeed installs from its source release without compiling any op
(``DS_BUILD_OPS=0``, ``--no-build-isolation`` so that its build sees the installed torch) and falls
back to its CPU accelerator. bitsandbytes, tensorboard and flash-attn are not needed to evaluate.
``--open-unlearning`` and ``--ou-python`` default to ``$OPEN_UNLEARNING_DIR`` and ``$OU_PYTHON``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SETUP_HINT = "see the setup steps at the top of bench/eval_vs_reference.py"
ROLES = ("retain", "target")
FORGET, HOLDOUT = "forget10", "holdout10"
OU_DEFAULT_NEW_TOKENS = 200  # configs/generation/default.yaml
# open-unlearning's dataset config names (locuslab/TOFU) <- the benchmark split written there.
DATASET_FILES = {
    f"{FORGET}_perturbed": "forget",
    FORGET: "forget",
    "retain_perturbed": "retain",
    HOLDOUT: "holdout",
    "real_authors_perturbed": "real_authors",
    "world_facts_perturbed": "world_facts",
}
# obliviate key -> (open-unlearning key, per-item field, only on the target run)
PAIRS: dict[str, tuple[str, str | None, bool]] = {
    "forget/prob": ("forget_Q_A_Prob", "prob", False),
    "forget/rouge": ("forget_Q_A_ROUGE", "rougeL_recall", False),
    "forget/truth_ratio": ("forget_truth_ratio", "score", False),
    "forget_quality": ("forget_quality", None, True),
    "forget/extraction_strength": ("extraction_strength", "score", False),
    "forget/mia_min_k": ("mia_min_k", "score", False),
    "privleak": ("privleak", None, False),
    "retain/prob": ("retain_Q_A_Prob", "prob", False),
    "retain/rouge": ("retain_Q_A_ROUGE", "rougeL_recall", False),
    "retain/truth_ratio": ("retain_Truth_Ratio", "score", False),
    "real_authors/prob": ("ra_Q_A_Prob_normalised", "prob", False),
    "real_authors/rouge": ("ra_Q_A_ROUGE", "rougeL_recall", False),
    "real_authors/truth_ratio": ("ra_Truth_Ratio", "score", False),
    "world_facts/prob": ("wf_Q_A_Prob_normalised", "prob", False),
    "world_facts/rouge": ("wf_Q_A_ROUGE", "rougeL_recall", False),
    "world_facts/truth_ratio": ("wf_Truth_Ratio", "score", False),
    "model_utility": ("model_utility", None, False),
}
# Where the two define a metric differently, and how to tell an item that differs for that reason.
DEFINITIONS = {
    "forget/extraction_strength": (
        "open-unlearning's loop stops at k = |y| - 1, so an answer whose last token is mispredicted "
        "scores 1/|y| there and 0 here (k* = |y|)",
        lambda ours, theirs: ours == 0.0 and 0.0 < theirs <= 0.5,
    ),
}
ROUGE_METRICS = ("forget_Q_A_ROUGE", *(f"model_utility.pre_compute.{s}_Q_A_ROUGE" for s in ("retain", "ra", "wf")))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("prep", type=Path, help="an `obliviate prepare` folder (target/, retain/, benchmark/)")
    ap.add_argument("--open-unlearning", type=Path, default=os.environ.get("OPEN_UNLEARNING_DIR"),
                    help="open-unlearning's source tree (default $OPEN_UNLEARNING_DIR)")
    ap.add_argument("--ou-python", type=Path, default=os.environ.get("OU_PYTHON"),
                    help="the interpreter of open-unlearning's venv (default $OU_PYTHON)")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="OMP threads of every process")
    ap.add_argument("--max-items", type=int, default=0, help="first N items of every split, both sides (0: all)")
    ap.add_argument("--max-new-tokens", type=int, default=OU_DEFAULT_NEW_TOKENS,
                    help="greedy generation length of the ROUGE metrics, both sides (open-unlearning's default 200)")
    ap.add_argument("--scope", choices=("full", "shared"), default="full",
                    help="obliviate runs its full plan, or only the metrics open-unlearning computes")
    ap.add_argument("--order", choices=("ours-first", "theirs-first"), default="ours-first")
    ap.add_argument("--rtol", type=float, default=None, help="relative tolerance of 'equal' (default 1e-4 fp32, 3e-2 bf16)")
    ap.add_argument("--top", type=int, default=8, help="largest per-item differences shown")
    ap.add_argument("--work", type=Path, help="keep files and logs here (default: a temporary folder)")
    ap.add_argument("--json", type=Path, help="also write the timings and comparison here")
    ap.add_argument("--compare-only", action="store_true",
                    help="compare the results already in --work (no process runs, no timing)")
    ap.add_argument("--no-warmup", action="store_true", help="skip reading the weights and importing torch once, untimed")
    return ap.parse_args()


def check_setup(args: argparse.Namespace) -> None:
    """Exit with how to set open-unlearning up when its tree or interpreter is missing."""
    ou, py = args.open_unlearning, args.ou_python
    if ou is None or not (ou / "src" / "eval.py").is_file() or not (ou / "configs" / "eval" / "tofu.yaml").is_file():
        sys.exit(f"open-unlearning's source tree not found ({ou}): pass --open-unlearning DIR or set "
                 f"OPEN_UNLEARNING_DIR to a checkout of github.com/locuslab/open-unlearning; {SETUP_HINT}")
    if py is None or not py.exists():
        sys.exit(f"open-unlearning's interpreter not found ({py}): pass --ou-python VENV/bin/python or set OU_PYTHON; "
                 f"it is a separate venv with transformers 4.45 (open-unlearning is not on PyPI); {SETUP_HINT}")
    probe = subprocess.run([str(py), "-c", "import hydra, transformers, datasets, rouge_score, deepspeed, lm_eval"],
                           capture_output=True, text=True)
    if probe.returncode:
        sys.exit(f"{py} cannot import open-unlearning's dependencies:\n{probe.stderr.strip()[-600:]}\n{SETUP_HINT}")
    for role in (*ROLES, "benchmark"):
        if not (args.prep / role).is_dir():
            sys.exit(f"{args.prep} has no {role}/: pass a folder written by `obliviate prepare` (or the demo's cache)")


# ---------------------------------------------------------------- inputs for open-unlearning ----


def plain_tags(formatter: Any) -> dict[str, Any]:
    """open-unlearning template_args reproducing obliviate's plain prompt, from PromptFormatter itself."""
    if formatter.style != "plain":
        sys.exit(f"the prepared models use the {formatter.style!r} prompt format; this bench reproduces only 'plain'")
    mark = "\x00"
    start, rest = formatter.prompt(mark).split(mark)
    return {"apply_chat_template": False, "system_prompt_with_special_tokens": None, "user_start_tag": start,
            "user_end_tag": "", "asst_start_tag": rest, "asst_end_tag": ""}


def write_datasets(task: Any, formatter: Any, root: Path, cap: int) -> dict[str, int]:
    """The benchmark's splits as a local copy of ``locuslab/TOFU`` (see the module docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    configs, sizes = [], {}
    for config, split in DATASET_FILES.items():
        records = task.split(split)
        records = records[:cap] if cap else records
        rows = []
        for q in records:
            row = {"question": q.question, "answer": formatter.answer(q.answer),
                   "perturbed_answer": [formatter.answer(p) for p in q.perturbed_answers]}
            if q.paraphrased_answer is not None:
                row["paraphrased_answer"] = formatter.answer(q.paraphrased_answer)
            rows.append(row)
        (root / f"{config}.json").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        configs.append({"config_name": config, "data_files": [{"split": "train", "path": f"{config}.json"}]})
        sizes[split] = len(rows)
    # A dataset card whose YAML header (JSON is YAML) names each config and its file.
    (root / "README.md").write_text(f"---\n{json.dumps({'configs': configs})}\n---\n", encoding="utf-8")
    return sizes


def compat_model(src: Path, dst: Path) -> Path:
    """A folder transformers 4.45 reads as the same model (see the module docstring)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name not in ("config.json", "tokenizer_config.json"):
            (dst / f.name).symlink_to(f.resolve())
    cfg = json.loads((src / "config.json").read_text())
    rope = cfg.get("rope_parameters") or {}
    if "rope_theta" not in cfg and "rope_theta" in rope:
        cfg["rope_theta"] = rope["rope_theta"]
        if rope.get("rope_type", "default") != "default":
            cfg["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
    if "dtype" in cfg and "torch_dtype" not in cfg:
        cfg["torch_dtype"] = cfg["dtype"]
    (dst / "config.json").write_text(json.dumps(cfg, indent=1))
    tok = json.loads((src / "tokenizer_config.json").read_text())
    if tok.get("tokenizer_class") in (None, "TokenizersBackend"):
        tok["tokenizer_class"] = "PreTrainedTokenizerFast"
    (dst / "tokenizer_config.json").write_text(json.dumps(tok, indent=1))
    return dst


def write_model_config(conf_dir: Path, template: dict[str, Any], precision: str) -> None:
    """configs/model/obliviate_plain.yaml (JSON is YAML) in the folder given to hydra.searchpath."""
    (conf_dir / "model").mkdir(parents=True, exist_ok=True)
    model = {
        "model_args": {"pretrained_model_name_or_path": None, "device_map": "cpu", "attn_implementation": "sdpa",
                       "torch_dtype": "bfloat16" if precision == "bf16" else "float32"},
        "tokenizer_args": {"pretrained_model_name_or_path": None},
        "template_args": template,
    }
    (conf_dir / "model" / "obliviate_plain.yaml").write_text(json.dumps(model, indent=1))


def tokenization_mismatches(task: Any, formatter: Any, cap: int) -> tuple[int, int]:
    """Sequences whose joint tokenization differs from prompt tokens + answer tokens (theirs vs ours)."""
    tok = formatter.tokenizer
    n = bad = 0
    for split in dict.fromkeys(DATASET_FILES.values()):
        records = task.split(split)
        for q in records[:cap] if cap else records:
            prompt = formatter.prompt(q.question)
            for a in (q.answer, q.paraphrased_answer, *q.perturbed_answers):
                if a is None:
                    continue
                n += 1
                ans = formatter.answer(a)
                joint = tok(prompt + ans, add_special_tokens=True)["input_ids"]
                bad += joint != formatter.prompt_ids(prompt) + formatter.answer_ids(ans)
    return bad, n


# ------------------------------------------------------------------------------- running ----


def run_timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run one process to its end: its wall time and its CPU time (user + system), in seconds.

    The CPU time does not count time spent stopped or waiting for a core another process holds,
    so on a busy machine it is the steadier figure (with one thread it is close to the work done).
    Exits on failure with the tail of the process's log.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode:
        tail = log.read_text(errors="replace")[-3000:]
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n--- {log} (tail) ---\n{tail}")
    return wall, cpu


def ou_command(args: argparse.Namespace, work: Path, role: str, model_dir: Path) -> list[str]:
    out = work / "ou" / role
    cmd = [
        str(args.ou_python), str((args.open_unlearning / "src" / "eval.py").resolve()),
        "--config-name=eval.yaml", f"hydra.searchpath=[file://{work / 'ou_configs'}]",
        "model=obliviate_plain", "eval=tofu", f"task_name=obliviate_bench_{role}",
        f"model.model_args.pretrained_model_name_or_path={model_dir}",
        f"model.tokenizer_args.pretrained_model_name_or_path={model_dir}",
        f"paths.output_dir={out}", f"eval.tofu.forget_split={FORGET}", f"eval.tofu.holdout_split={HOLDOUT}",
        "eval.tofu.overwrite=true",
        f"eval.tofu.retain_logs_path={work / 'ou' / 'retain' / 'TOFU_EVAL.json' if role == 'target' else 'null'}",
    ]
    if args.max_new_tokens != OU_DEFAULT_NEW_TOKENS:
        cmd += [f"eval.tofu.metrics.{m}.generation_args.max_new_tokens={args.max_new_tokens}" for m in ROUGE_METRICS]
    return cmd


def ob_command(args: argparse.Namespace, work: Path, role: str) -> list[str]:
    cmd = [
        args.ob_python, "-m", "obliviate", "eval", "--model", str(args.prep / role),
        "--benchmark", str(args.prep / "benchmark"), "--out", str(work / "ob" / role), "--overwrite",
        "--eval.precision", args.precision, "--eval.max_new_tokens", str(args.max_new_tokens),
        "--eval.max_items", str(args.max_items), "--eval.prompt_format", "plain",
    ]
    if role == "target":
        cmd += ["--reference", str(work / "ob" / "retain")]
    if args.scope == "shared":
        cmd += ["--metrics", ",".join(k for k, (_, _, target_only) in PAIRS.items() if role == "target" or not target_only)]
    return cmd


def process_env(args: argparse.Namespace, work: Path) -> dict[str, str]:
    env = dict(os.environ)
    n = str(args.threads)
    env.update({
        "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(work / "hf_home"), "CUDA_VISIBLE_DEVICES": "", "PYTHONWARNINGS": "ignore",
    })
    env.pop("OBLIVIATE_THREADS", None)
    return env


def warm_up(args: argparse.Namespace, env: dict[str, str], work: Path) -> None:
    """Untimed: the weights into the page cache and each interpreter's torch import once."""
    for role in ROLES:
        for f in (args.prep / role).iterdir():
            with f.open("rb") as fh:
                while fh.read(1 << 24):
                    pass
    for py in (args.ob_python, str(args.ou_python)):
        subprocess.run([py, "-c", "import torch, transformers"], env=env, cwd=work, capture_output=True)


# ----------------------------------------------------------------------------- comparison ----


def ou_items(entry: dict[str, Any], key: str, field: str) -> list[float] | None:
    """open-unlearning's per-item values in dataset order (Min-K%: members then non-members, negated)."""
    if key == "mia_min_k":
        sides = [entry.get(side, {}).get("value_by_index", {}) for side in ("forget", "holdout")]
        return [-float(v[field]) for side in sides for _, v in sorted(side.items(), key=lambda kv: int(kv[0]))]
    by_index = entry.get("value_by_index")
    if not by_index:
        return None
    return [float(v[field]) for _, v in sorted(by_index.items(), key=lambda kv: int(kv[0]))]


def close(a: float | None, b: float | None, rtol: float) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-6 + rtol * max(abs(a), abs(b))


def compare(ob: dict[str, Any], ou: dict[str, Any], role: str, rtol: float) -> tuple[list[dict], list[dict]]:
    """One row per shared metric, and every per-item difference (for the largest ones)."""
    rows, items = [], []
    for ours_key, (their_key, field, target_only) in PAIRS.items():
        if target_only and role != "target":
            continue
        mine, theirs = ob["metrics"].get(ours_key), ou.get(their_key)
        if mine is None or theirs is None:
            rows.append({"role": role, "ours": ours_key, "theirs": their_key, "missing": True})
            continue
        a = float(mine["aggregate"])
        b = theirs.get("agg_value")
        b = None if b is None else float(b)
        row = {"role": role, "ours": ours_key, "theirs": their_key, "obliviate": a, "open_unlearning": b,
               "equal": close(a, b, rtol), "n": 0, "n_equal": 0, "n_definition": 0, "max_diff": 0.0, "max_item": ""}
        if field is not None:
            vals = ou_items(theirs, their_key, field)
            if vals is not None and len(vals) == len(mine["values"]):
                gens = ob.get("generations", {}).get(ours_key.split("/")[0], {})
                for item_id, x, y, idx in zip(mine["item_ids"], mine["values"], vals, range(len(vals))):
                    d = abs(x - y)
                    row["n"] += 1
                    row["n_equal"] += close(x, y, rtol)
                    if not close(x, y, rtol) and ours_key in DEFINITIONS and DEFINITIONS[ours_key][1](x, y):
                        row["n_definition"] += 1
                    if d > row["max_diff"]:
                        row["max_diff"], row["max_item"] = d, item_id
                    item = {"role": role, "metric": ours_key, "item": item_id, "obliviate": x,
                            "open_unlearning": y, "diff": d, "rel": d / max(abs(x), abs(y), 1e-12)}
                    if field == "rougeL_recall":
                        item["gen_obliviate"] = gens.get(item_id, "")
                        item["gen_open_unlearning"] = theirs["value_by_index"][str(idx)].get("generation", "")
                    items.append(item)
            else:
                row["note"] = f"per-item counts differ ({len(mine['values'])} vs {None if vals is None else len(vals)})"
        rows.append(row)
    return rows, items


def fmt(x: float | None) -> str:
    if x is None:
        return "None"
    return f"{x:.4g}" if (x == 0 or 1e-3 <= abs(x) < 1e4) else f"{x:.3e}"


def print_report(rows: list[dict], items: list[dict], args: argparse.Namespace, rtol: float) -> bool:
    print(f"\n{'model':7} {'obliviate key':26} {'open-unlearning key':23} {'obliviate':>10} {'open-unl.':>10} "
          f"{'agg eq':>6} {'items eq':>9} {'max item |d|':>12}  item")
    all_equal = up_to_definitions = True
    for r in rows:
        if r.get("missing"):
            print(f"{r['role']:7} {r['ours']:26} {r['theirs']:23} {'(missing on one side)':>28}")
            all_equal = up_to_definitions = False
            continue
        eq_items = f"{r['n_equal']}/{r['n']}" if r["n"] else "-"
        all_equal &= r["equal"] and r["n_equal"] == r["n"]
        up_to_definitions &= (r["equal"] or r["n_definition"] > 0) and r["n_equal"] + r["n_definition"] == r["n"]
        note = f" ({r['n_definition']} by definition, below)" if r["n_definition"] else ""
        print(f"{r['role']:7} {r['ours']:26} {r['theirs']:23} {fmt(r['obliviate']):>10} {fmt(r['open_unlearning']):>10} "
              f"{'yes' if r['equal'] else 'NO':>6} {eq_items:>9} {fmt(r['max_diff']) if r['n'] else '-':>12}  "
              f"{r.get('max_item', '')}{note}{' ' + r['note'] if r.get('note') else ''}")
    for key in sorted({r["ours"] for r in rows if r.get("n_definition")}):
        print(f"  {key}: {DEFINITIONS[key][0]}")
    ranked = sorted(items, key=lambda it: -it["rel"])[: args.top]
    if ranked:
        print(f"\nlargest relative per-item differences (of {len(items)} item values):")
        for it in ranked:
            print(f"  {it['role']:7} {it['metric']:26} {it['item']:22} obliviate {fmt(it['obliviate'])}  "
                  f"open-unlearning {fmt(it['open_unlearning'])}  |d| {fmt(it['diff'])} (rel {it['rel']:.1e})")
            if "gen_obliviate" in it:
                print(f"      obliviate:       {it['gen_obliviate'].strip()[:110]!r}")
                print(f"      open-unlearning: {it['gen_open_unlearning'].strip()[:110]!r}")
    gens = [it for it in items if "gen_obliviate" in it]
    same = sum(it["gen_obliviate"].strip() == it["gen_open_unlearning"].strip() for it in gens)
    if gens:
        print(f"identical greedy generations: {same}/{len(gens)}")
    verdict = "yes" if all_equal else "only up to the definition differences above" if up_to_definitions else "no"
    print(f"numbers equal (every shared aggregate and item within rtol {rtol:g}): {verdict}")
    return all_equal


def main() -> None:
    args = parse_args()
    args.ob_python = sys.executable
    check_setup(args)
    from transformers import AutoTokenizer

    from obliviate.data.formatting import PromptFormatter
    from obliviate.data.task import UnlearningTask

    rtol = args.rtol if args.rtol is not None else (1e-4 if args.precision == "fp32" else 3e-2)
    task = UnlearningTask.load(args.prep / "benchmark")
    recorded = args.prep / "target" / "obliviate.json"
    fmt_style = json.loads(recorded.read_text()).get("prompt_format", "auto") if recorded.is_file() else "auto"
    formatter = PromptFormatter(AutoTokenizer.from_pretrained(args.prep / "target"), fmt_style)
    keep = args.work is not None
    work = (args.work or Path(tempfile.mkdtemp(prefix="eval_vs_reference-"))).resolve()
    if args.compare_only and not keep:
        sys.exit("--compare-only needs --work DIR: the folder of an earlier run")
    for sub in () if args.compare_only else ("ou", "ob", "ou_configs", "ou_models", "locuslab", "hf_home"):
        shutil.rmtree(work / sub, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    sizes = write_datasets(task, formatter, work / "locuslab" / "TOFU", args.max_items)
    write_model_config(work / "ou_configs", plain_tags(formatter), args.precision)
    ou_models = {r: work / "ou_models" / r for r in ROLES}
    if not args.compare_only:
        ou_models = {r: compat_model(args.prep / r, ou_models[r]) for r in ROLES}
    bad, n_seq = tokenization_mismatches(task, formatter, args.max_items)
    env = process_env(args, work)
    print(f"items per split: {sizes}; precision {args.precision}; {args.threads} threads; "
          f"{args.max_new_tokens} new tokens; obliviate scope {args.scope}; work folder {work}")
    print(f"joint tokenization (open-unlearning) differs from prompt + answer tokens (obliviate) on {bad}/{n_seq} sequences")
    if not (args.no_warmup or args.compare_only):
        warm_up(args, env, work)

    times: dict[str, dict[str, float]] = {"obliviate": {}, "open-unlearning": {}}
    cpu: dict[str, dict[str, float]] = {"obliviate": {}, "open-unlearning": {}}
    sides = ["obliviate", "open-unlearning"]
    for side in [] if args.compare_only else sides if args.order == "ours-first" else sides[::-1]:
        for role in ROLES:  # the retain-only model first: the target's run reads its results
            if side == "obliviate":
                cmd, cwd = ob_command(args, work, role), Path.cwd()
            else:
                cmd, cwd = ou_command(args, work, role, ou_models[role]), work
            times[side][role], cpu[side][role] = run_timed(cmd, cwd, env, work / "logs" / f"{side}-{role}.log")
            print(f"{side:16} {role:7} {times[side][role]:7.1f} s wall, {cpu[side][role]:7.1f} s CPU")

    rows: list[dict] = []
    items: list[dict] = []
    for role in ROLES:
        ob = json.loads((work / "ob" / role / "run.json").read_text())
        ou = json.loads((work / "ou" / role / "TOFU_EVAL.json").read_text())
        r, i = compare(ob, ou, role, rtol)
        rows += r
        items += i
    equal = print_report(rows, items, args, rtol)
    if args.compare_only:
        return

    total = {side: sum(t.values()) for side, t in times.items()}
    total_cpu = {side: sum(t.values()) for side, t in cpu.items()}
    ratio = total["open-unlearning"] / total["obliviate"]
    ratio_cpu = total_cpu["open-unlearning"] / total_cpu["obliviate"]
    print(f"\nretain + target processes ({args.threads} threads, {args.precision}, obliviate scope {args.scope}):")
    for side in sides:
        t, c = times[side], cpu[side]
        print(f"  {side:16} wall {t['retain']:7.1f} s + {t['target']:7.1f} s = {total[side]:7.1f} s   "
              f"CPU {c['retain']:7.1f} s + {c['target']:7.1f} s = {total_cpu[side]:7.1f} s")
    print(f"  ratio open-unlearning / obliviate: {ratio:.2f}x wall, {ratio_cpu:.2f}x CPU")
    if args.json:
        summary = {"times_s": times, "cpu_s": cpu, "ratio": ratio, "ratio_cpu": ratio_cpu, "equal": equal, "rtol": rtol, "items": sizes,
                   "settings": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                   "largest": sorted(items, key=lambda it: -it["rel"])[: args.top],
                   "tokenization_mismatches": [bad, n_seq]}
        args.json.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    if not keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
