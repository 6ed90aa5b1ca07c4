"""White-box probe: a linear probe on frozen hidden states that tells a true answer from wrong ones.

After Lynch, Guo, Ewart, Casper and Hadfield-Menell, "Eight Methods to Evaluate Robust Unlearning
in LLMs" (arXiv 2402.16835), whose probing finding is that an unlearned model's activations still
represent the forgotten knowledge about as well as the original's. The paper publishes no code;
this follows the protocol in ``shared/reference/attacks-and-benchmarks.md`` section 5.3, refitting
the probe on the model under attack (the strongest of its variants):

1. Statements: each QA item's question in the model's prompt format followed by its paraphrased
   answer (true; the answer itself when there is no paraphrase) and by each perturbed answer
   (false), as in TOFU's truth ratio, so that true and false statements share their form.
2. Features: the frozen model's hidden state at the statement's last token (``pool="last"``) or
   the mean over the answer tokens (``pool="mean"``), at every layer's output.
3. Per layer, an L2-regularised logistic regression (standardised features, class-balanced
   weights, L-BFGS) is fitted on the statements of most retain items, and the layer whose probe
   ranks true above false most often on the remaining retain items is chosen.
4. That probe scores each forget item: the fraction of its false statements scored below its true
   one (ties count half). Chance is 0.5; a model that never knew the fact (the retain-only model,
   whose value is the goal) should sit near it.

The model is only read. Forget items without a perturbed answer are skipped (and listed).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from obliviate.attacks.base import Attack, AttackContext, Attacked, require_qa_forget
from obliviate.data.records import QA
from obliviate.data.task import UnlearningTask
from obliviate.errors import ConfigError
from obliviate.types import Model

if TYPE_CHECKING:
    from torch import Tensor

    from obliviate.data.formatting import PromptFormatter

RESULT_KEY = "forget/linear_probe_acc"


@dataclass
class LinearProbeConfig:
    """Options of the linear probe (``--linear_probe.<field>``)."""

    train_items: int = 200  # retain items whose statements train and select the probe (at most)
    heldout: float = 0.25  # fraction of those retain items held out to choose the layer
    l2: float = 1e-2  # L2 penalty on the probe's weights (mean log loss + l2 * |w|^2 / 2), standardised features
    pool: str = "last"  # hidden state of the statement's last token ("last", Lynch et al.) or the mean over its answer tokens ("mean")
    layers: str = "all"  # layers to probe: "all" (0 = embeddings ... last) or a comma list of indices, e.g. "2,3"
    batch_size: int = 16  # statements per forward pass
    max_length: int = 256  # longest statement in tokens (the prompt is cut from its start)

    def validate(self) -> None:
        """Raise ConfigError on values that cannot work, before any model loads."""
        from obliviate.attacks.probe import parse_layers

        if self.train_items < 4:
            raise ConfigError(
                "linear_probe.train_items must be at least 4 (some to fit, some to choose the "
                f"layer), got {self.train_items}"
            )
        if not 0.0 < self.heldout < 1.0:
            raise ConfigError(f"linear_probe.heldout must be in (0, 1), got {self.heldout}")
        if not self.l2 >= 0.0 or self.l2 == float("inf"):
            raise ConfigError(f"linear_probe.l2 must be finite and >= 0, got {self.l2}")
        if self.pool not in ("last", "mean"):
            raise ConfigError(f"linear_probe.pool must be 'last' or 'mean', got {self.pool!r}")
        if self.batch_size < 1:
            raise ConfigError(f"linear_probe.batch_size must be at least 1, got {self.batch_size}")
        if self.max_length < 8:
            raise ConfigError(f"linear_probe.max_length must be at least 8, got {self.max_length}")
        parse_layers(self.layers, None)


def _probeable(items: list[Any]) -> list[QA]:
    return [q for q in items if isinstance(q, QA) and q.perturbed_answers]


def hidden_features(
    model: Model,
    formatter: PromptFormatter,
    statements: list[tuple[str, str]],
    *,
    pool: str,
    batch_size: int,
    max_length: int,
    pad_id: int,
) -> Tensor:
    """Hidden states of ``(question, answer)`` statements at every layer: ``[layers + 1, n,
    hidden]`` (float32, CPU).

    Index 0 is the embedding output. ``pool="last"`` takes the last answer token, ``"mean"`` the
    mean over the answer tokens.
    """
    import torch

    from obliviate.data.formatting import collate, encode_pair

    device = next(model.parameters()).device
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(statements), batch_size):
            part = statements[start : start + batch_size]
            encoded = [
                encode_pair(
                    formatter, formatter.prompt(q), formatter.answer(a), max_length, add_end=False
                )
                for q, a in part
            ]
            batch = collate(encoded, pad_id, side="right")
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            answer = (batch["labels"] != -100).to(device)
            out = model(
                input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False
            )
            if pool == "last":
                last = mask.long().sum(-1) - 1
                rows = torch.arange(ids.shape[0], device=device)
                feats = [h[rows, last].float() for h in out.hidden_states]
            else:
                w = answer.float()
                w = w / w.sum(-1, keepdim=True).clamp_min(1.0)
                feats = [(h.float() * w[..., None]).sum(1) for h in out.hidden_states]
            chunks.append(torch.stack(feats).cpu())
    return torch.cat(chunks, dim=1)


def fit_logistic(
    x: Tensor, y: Tensor, l2: float, max_iter: int = 200
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """An L2-regularised, class-balanced logistic regression on standardised features.

    Minimises ``mean_i c_i * BCE(w . z_i + b, y_i) + l2 * |w|^2 / 2`` with ``z = (x - mu) / sd`` and
    ``c`` the balanced class weights, by L-BFGS in float64. Returns ``(w, b, mu, sd)``.
    """
    import torch

    x = x.double()
    y = y.double()
    mu = x.mean(0)
    sd = x.std(0, unbiased=False).clamp_min(1e-6)
    z = (x - mu) / sd
    pos = float(y.sum())
    neg = float(len(y)) - pos
    if pos == 0 or neg == 0:
        raise ValueError("the probe needs true and false statements")
    c = torch.where(y > 0, len(y) / (2 * pos), len(y) / (2 * neg))
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Any:
        opt.zero_grad()
        logits = z @ w + b
        loss = (
            c * torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
        ).mean() + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach(), mu, sd


def probe_scores(x: Tensor, fitted: tuple[Tensor, Tensor, Tensor, Tensor]) -> Tensor:
    """The fitted probe's logits for features ``x`` ``[n, hidden]``."""
    w, b, mu, sd = fitted
    return ((x.double() - mu) / sd) @ w + b


def ranking_accuracy(scores: Tensor, groups: list[tuple[int, list[int]]]) -> list[float]:
    """Per item: the fraction of its false statements scored below its true one (ties half)."""
    out = []
    for t, falses in groups:
        st = float(scores[t])
        wins = sum(
            1.0 if st > float(scores[f]) else 0.5 if st == float(scores[f]) else 0.0 for f in falses
        )
        out.append(wins / len(falses))
    return out


def statements_of(
    items: list[QA],
) -> tuple[list[tuple[str, str]], list[int], list[tuple[int, list[int]]]]:
    """Statements, labels (1 true, 0 false) and per item (true index, false indices)."""
    statements: list[tuple[str, str]] = []
    labels: list[int] = []
    groups: list[tuple[int, list[int]]] = []
    for q in items:
        t = len(statements)
        statements.append((q.question, q.paraphrased_answer or q.answer))
        labels.append(1)
        falses = []
        for wrong in q.perturbed_answers:
            falses.append(len(statements))
            statements.append((q.question, wrong))
            labels.append(0)
        groups.append((t, falses))
    return statements, labels, groups


class LinearProbe(Attack):
    """Can a linear probe on the frozen hidden states still tell each forget fact's true
    answer from wrong ones?

    Per item: the probe's ranking accuracy on its statements (lower is better; chance 0.5). The
    probe is fitted and its layer chosen on retain items only, for the unlearned and the
    retain-only model alike; the per-layer accuracies go in ``extra``.
    """

    name: ClassVar[str] = "linear_probe"
    kind: ClassVar[str] = "white_box"  # type: ignore[assignment]
    config_cls: ClassVar[type] = LinearProbeConfig

    config: LinearProbeConfig

    def check(self, task: UnlearningTask) -> None:
        """Forget and retain items need perturbed (wrong) answers to build false statements."""
        require_qa_forget(task, self.name)
        if not _probeable(list(task.forget)):
            raise ConfigError(
                "the linear probe needs forget questions with perturbed (wrong) answers, and "
                f"{task.name!r} has none; use a benchmark with perturbed answers (fictional, tofu)"
            )
        n = len(_probeable(list(task.retain)))
        if n < 4:
            raise ConfigError(
                "the linear probe is fitted on retain questions with perturbed answers; "
                f"{task.name!r} has {n} (at least 4 needed)"
            )

    def apply(self, ctx: AttackContext) -> Attacked:
        """Fit the probe on retain statements, choose its layer on held-out retain items, score
        the forget items."""
        import torch

        from obliviate.attacks.probe import parse_layers

        self.check(ctx.task)
        cfg = self.config
        loaded = ctx.model
        model = loaded.model
        formatter = loaded.formatter(ctx.prompt_format)
        pad = (
            loaded.tokenizer.pad_token_id
            if loaded.tokenizer.pad_token_id is not None
            else formatter.end_id
        )
        all_forget = require_qa_forget(ctx.task, self.name)
        forget = _probeable(all_forget)
        kept = {q.id for q in forget}
        skipped = [q.id for q in all_forget if q.id not in kept]
        retain = _probeable(list(ctx.task.retain))
        rng = random.Random(f"linear_probe:{ctx.seed}")
        rng.shuffle(retain)
        retain = retain[: cfg.train_items]
        n_val = min(max(1, round(len(retain) * cfg.heldout)), len(retain) - 2)
        val_items, fit_items = retain[:n_val], retain[n_val:]

        was_training = model.training
        model.eval()
        try:
            feats = {}
            parts = {"fit": fit_items, "val": val_items, "forget": forget}
            layout = {}
            for part, items in parts.items():
                statements, labels, groups = statements_of(items)
                layout[part] = (labels, groups)
                feats[part] = hidden_features(
                    model,
                    formatter,
                    statements,
                    pool=cfg.pool,
                    batch_size=cfg.batch_size,
                    max_length=cfg.max_length,
                    pad_id=pad,
                )
        finally:
            model.train(was_training)
        n_readouts = feats["fit"].shape[0]
        layers = parse_layers(cfg.layers, n_readouts)
        y_fit = torch.tensor(layout["fit"][0])
        val_acc: list[float] = []
        forget_acc: list[float] = []
        forget_values: dict[int, list[float]] = {}
        for layer in layers:
            fitted = fit_logistic(feats["fit"][layer], y_fit, cfg.l2)
            v = ranking_accuracy(probe_scores(feats["val"][layer], fitted), layout["val"][1])
            f = ranking_accuracy(probe_scores(feats["forget"][layer], fitted), layout["forget"][1])
            val_acc.append(sum(v) / len(v))
            forget_acc.append(sum(f) / len(f))
            forget_values[layer] = f
        best = max(range(len(layers)), key=lambda i: (val_acc[i], -i))  # ties: the earliest layer
        chosen = layers[best]
        values = forget_values[chosen]
        result = {
            "values": values,
            "item_ids": [q.id for q in forget],
            "aggregate": float(sum(values) / len(values)),
            "direction": "lower",
            "description": (
                "linear probe on frozen hidden states (fitted on retain statements, layer chosen "
                "on held-out retain items): fraction of each forget item's wrong answers ranked "
                "below its true one; chance 0.5 (Lynch et al. 2024)"
            ),
            "extra": {
                "layer": chosen,
                "layers": list(layers),
                "heldout_retain_acc": val_acc,
                "forget_acc_per_layer": forget_acc,
                "pool": cfg.pool,
                "skipped": skipped,
            },
        }
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        result["extra"]["dtype"] = dtype
        details = {
            "method": (
                "L2 logistic regression per layer on frozen hidden states, refitted on this model"
            ),
            # the forward passes run in the weights' dtype (no autocast); the fit in float64
            "dtype": dtype,
            "pool": cfg.pool,
            "l2": cfg.l2,
            "layer": chosen,
            "heldout_retain_acc": val_acc[best],
            "fit_items": len(fit_items),
            "heldout_items": len(val_items),
            "statements": {part: len(layout[part][0]) for part in layout},
            "prompt_format": formatter.style,
            "items": len(forget),
            "skipped_items": skipped,
        }
        return Attacked(model=loaded, task=ctx.task, details=details, results={RESULT_KEY: result})
