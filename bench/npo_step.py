"""What NPO's reference model costs per training step, with and without cached log-probabilities.

Measures, side by side on SmolLM2-135M (``load_model("smollm2-135m")``) with one batch of 8 forget
items of the fictional benchmark:

1. a plain fine-tuning step (mean answer NLL, forward + backward + AdamW step);
2. an NPO step with the reference log-probabilities cached once before training (what
   :class:`obliviate.methods.npo.NPO` does);
3. an NPO step that runs the reference model forward on every step (what the official code does).

NPO runs without its retain term here so that all three steps see the same tokens. The steps are
timed round-robin (one of each in turn, after warm-up) so that a noisy machine slows all three
alike; the fastest and the median step of each are reported with their ratios to plain
fine-tuning. Goal: cached NPO within 1.15x of fine-tuning.

Usage: ``python bench/npo_step.py [--steps 6] [--model smollm2-135m] [--bf16 auto] [--prompt-format chat] [--threads N]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any


def build(model_name: str, bf16: str, prompt_format: str = "chat") -> dict[str, Any]:
    """Load the model, one batch of 8 fictional forget items (with item indices) and the settings."""
    import torch

    from obliviate.benchmarks.fictional import build_fictional
    from obliviate.data.formatting import make_collate
    from obliviate.methods.npo import NPO, NPOConfig
    from obliviate.models import load_model
    from obliviate.models.precision import bf16_autocast, resolve_bf16
    from obliviate.unlearning import build_items

    lm = load_model(model_name)
    formatter = lm.formatter(prompt_format)
    task = build_fictional()
    method = NPO(NPOConfig(retain_loss="none"))
    items = build_items(task, formatter, method, 128, 0)[:8]
    collate = make_collate(lm.tokenizer.pad_token_id)
    batch = collate(items)
    reference = _frozen_copy(lm.model)
    use_bf16 = resolve_bf16(bf16)
    with torch.no_grad(), bf16_autocast("cpu", use_bf16):
        method.ref_seq_nll = _sequence_nll(reference, batch["forget"])
    return {"lm": lm, "batch": batch, "method": method, "reference": reference, "bf16": use_bf16, "formatter": formatter}


def _frozen_copy(model: Any) -> Any:
    import copy

    ref = copy.deepcopy(model).eval()
    ref.requires_grad_(False)
    return ref


def _sequence_nll(model: Any, part: dict[str, Any]) -> Any:
    from obliviate.methods.base import forward_logits
    from obliviate.methods.losses import sequence_nll

    logits, labels = forward_logits(model, part)
    return sequence_nll(logits, labels).float()


def losses(setup: dict[str, Any]) -> dict[str, Callable[[Any, dict[str, Any]], Any]]:
    """The three per-step objectives, each ``loss(model, batch) -> scalar tensor``."""
    import torch

    from obliviate.methods.base import sft_loss
    from obliviate.methods.losses import npo_loss

    method, reference = setup["method"], setup["reference"]

    def fine_tune(model: Any, batch: dict[str, Any]) -> Any:
        return sft_loss(model, batch).loss

    def npo_cached(model: Any, batch: dict[str, Any]) -> Any:
        return method.loss(model, batch).loss

    def npo_live(model: Any, batch: dict[str, Any]) -> Any:
        seq = _sequence_nll(model, batch["forget"])
        with torch.no_grad():
            ref = _sequence_nll(reference, batch["forget"])
        return npo_loss(seq, ref, method.config.beta)

    return {"fine-tuning": fine_tune, "NPO, cached reference": npo_cached, "NPO, live reference": npo_live}


GUARD_ROW = "fine-tuning + divergence guard"


def time_steps(setup: dict[str, Any], steps: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each optimizer step of each objective, timed round-robin after warm-up."""
    import torch

    from obliviate.models.precision import bf16_autocast
    from obliviate.training.loop import weights_finite

    model = setup["lm"].model
    model.train()
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-6)
    objectives = losses(setup)
    # The training loop's divergence guard: a copy of the weights before each update and a
    # finiteness check after it; timed as its own row on the fine-tuning objective.
    guarded = {GUARD_ROW: objectives["fine-tuning"]}
    kept = [torch.empty_like(p) for p in params]
    batch = setup["batch"]
    times: dict[str, list[float]] = {name: [] for name in {**objectives, **guarded}}
    for i in range(warmup + steps):
        for name, loss_fn in {**objectives, **guarded}.items():
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with bf16_autocast("cpu", setup["bf16"]):
                loss = loss_fn(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            if name == GUARD_ROW:
                with torch.no_grad():
                    for k, p in zip(kept, params):
                        k.copy_(p.detach())
            optimizer.step()
            if name == GUARD_ROW and not weights_finite(params):
                raise RuntimeError("the weights became non-finite during the benchmark")
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--steps", type=int, default=6, help="timed steps of each kind")
    parser.add_argument("--bf16", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--prompt-format", default="chat", choices=("chat", "plain"), help="chat: about 64 tokens per item")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    setup = build(args.model, args.bf16, args.prompt_format)
    mask = setup["batch"]["forget"]["attention_mask"]
    ids = mask.sum(dim=1).float()
    print(
        f"model {args.model}, batch {len(ids)} x {mask.shape[1]} tokens padded ({ids.mean():.0f} real on average), "
        f"{setup['formatter'].style} prompts, bf16 {'on' if setup['bf16'] else 'off'}, "
        f"{torch.get_num_threads()} threads, {args.steps} timed steps each"
    )
    times = time_steps(setup, args.steps)
    best, mid = min(times["fine-tuning"]), statistics.median(times["fine-tuning"])
    print("per optimizer step: fastest of the timed steps (least disturbed by other load) and median")
    for name, values in times.items():
        print(
            f"{name:24s} fastest {min(values) * 1000:7.0f} ms (ratio {min(values) / best:.3f})   "
            f"median {statistics.median(values) * 1000:7.0f} ms (ratio {statistics.median(values) / mid:.3f})"
        )


if __name__ == "__main__":
    main()
