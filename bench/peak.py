"""This machine's matmul peak, and the fraction of it that obliviate's training and scoring reach.

Measures, in one process:

1. **Peak**: fp32 and bf16 matmul throughput (GFLOP/s, best of a few repeats) at the shapes
   SmolLM2-135M multiplies (a batch of 8 answers of about 64 tokens = 512 rows through the
   attention, MLP and LM-head weights; one decoding step of 64 prompts) and at a large square
   shape, where the BLAS reaches its best.
2. **Workloads** on SmolLM2-135M with 8 fictional forget items (chat format), each in fp32 and
   under bf16 autocast:

   - a fine-tuning step (answer NLL, forward + backward + AdamW);
   - an unlearning step (GradDiff: a forget and a retain batch, forward + backward + AdamW);
   - both steps again with the model's fused (sdpa) attention, where the training loop uses
     eager attention for short sequences on the CPU (``obliviate.training.attention``);
   - a scoring pass (``ModelScorer.score`` of every forget question with its answer, whole
     sequences, batches of 16 sorted by length, as the evaluation runs them);
   - a generation pass (``ModelScorer.generate`` of 16 prompts, at most 32 new tokens).

   Each workload's matmul FLOPs are counted by a forward hook from the shapes it ran (padded tokens included, as
   the hardware computes them): 2 x tokens x weights of every linear layer (the LM head too) plus
   the attention products, and 3x that for a step with a backward pass. The fraction printed is
   achieved GFLOP/s over the best peak of the same precision.

Usage: ``python bench/peak.py [--threads N] [--repeats 3] [--model smollm2-135m]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any


def best_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    """Fastest of ``repeats`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(repeats: int) -> list[tuple[str, str, float]]:
    """(shape label, dtype, GFLOP/s) for each shape and precision."""
    import torch

    shapes = {
        "attention 512x576 @ 576x576": (512, 576, 576),
        "MLP up 512x576 @ 576x1536": (512, 576, 1536),
        "MLP down 512x1536 @ 1536x576": (512, 1536, 576),
        "LM head 512x576 @ 576x49152": (512, 576, 49152),
        "decode 64x576 @ 576x1536": (64, 576, 1536),
        "square 2048^3": (2048, 2048, 2048),
        "square 4096^3": (4096, 4096, 4096),
    }
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for label, (m, k, n) in shapes.items():
            a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            with torch.inference_mode():
                s = best_seconds(lambda a=a, b=b: torch.mm(a, b), repeats)
            rows.append((label, str(dtype).replace("torch.", ""), 2 * m * k * n / s / 1e9))
    return rows


def linear_weights(model: Any) -> int:
    """Sum of in x out over every linear layer (the LM head included, tied or not)."""
    import torch

    return sum(
        m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)
    )


def forward_flops(model: Any, batch: int, seq: int, context: int) -> float:
    """Matmul FLOPs of one forward pass over ``batch`` x ``seq`` tokens attending to ``context`` keys."""
    cfg = model.config
    attention = 2 * 2 * batch * seq * context * cfg.hidden_size * cfg.num_hidden_layers  # QK^T, AV
    return 2 * batch * seq * linear_weights(model) + attention


def counted_flops(model: Any, fn: Callable[[], Any]) -> float:
    """Run ``fn`` once and count the forward FLOPs of every call of ``model`` it made, from the
    shapes each call really ran (so the scorer's own batching and decoding are what is counted)."""
    total = 0.0

    def count(_module: Any, args: tuple, kwargs: dict[str, Any]) -> None:
        nonlocal total
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        context = mask.shape[1] if mask is not None else ids.shape[1]
        total += forward_flops(model, ids.shape[0], ids.shape[1], context)

    handle = model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        fn()
    finally:
        handle.remove()
    return total


def workloads(model_name: str, repeats: int) -> list[tuple[str, str, float, float]]:
    """(workload, precision, seconds, GFLOP/s) for each workload in fp32 and bf16.

    A step with a backward pass counts 3x its forward FLOPs (the backward computes gradients
    for both activations and weights)."""
    import torch

    from obliviate.benchmarks.fictional import build_fictional
    from obliviate.data.formatting import make_collate
    from obliviate.methods.base import resolve_method, sft_loss
    from obliviate.models import load_model
    from obliviate.models.precision import bf16_autocast
    from obliviate.scoring import ModelScorer
    from obliviate.training.attention import training_attention
    from obliviate.unlearning import build_items

    lm = load_model(model_name)
    model = lm.model
    formatter = lm.formatter("chat")
    task = build_fictional()
    method = resolve_method("grad_diff")
    batch = make_collate(lm.tokenizer.pad_token_id)(build_items(task, formatter, method, 128, 0)[:8])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-9)
    questions = [(r.question, r.answer) for r in task.forget]
    new_tokens = 32
    rows = []
    for bf16 in (False, True):
        precision = "bf16" if bf16 else "fp32"
        scorer = ModelScorer(model, lm.tokenizer, formatter, batch_size=16, bf16=bf16, share_prompts=False)
        requests = [scorer.qa_request(q, a) for q, a in questions]
        prompts = [formatter.prompt(q) for q, _ in questions[:16]]

        def step(loss_fn: Callable[[], Any], bf16: bool = bf16, kernel: bool = True) -> None:
            """One optimizer step; ``kernel``: with the attention the training loop picks (eager on
            the CPU for short sequences under bf16, obliviate.training.attention), else sdpa."""
            optimizer.zero_grad(set_to_none=True)
            with bf16_autocast("cpu", bf16), training_attention(model, "cpu", 128 if kernel else 10**9, bf16):
                loss = loss_fn()
                loss.backward()
            optimizer.step()

        jobs: list[tuple[str, bool, int, Callable[[], Any]]] = [
            ("fine-tuning step", True, 3, lambda: step(lambda: sft_loss(model, batch).loss)),
            ("fine-tuning step (sdpa attention)", True, 3, lambda: step(lambda: sft_loss(model, batch).loss, kernel=False)),
            ("unlearning step (grad_diff)", True, 3, lambda: step(lambda: method.loss(model, batch).loss)),
            ("unlearning step (grad_diff, sdpa)", True, 3,
             lambda: step(lambda: method.loss(model, batch).loss, kernel=False)),
            (f"scoring pass ({len(requests)} answers)", False, 1, lambda s=scorer, r=requests: s.score(r)),
            # the scorer's own decoding; every one of its forwards is counted, early stops included
            (f"generation pass (16 x <= {new_tokens} tokens)", False, 1,
             lambda s=scorer, p=prompts: s.generate(p, max_new_tokens=new_tokens)),
        ]
        for name, train, factor, fn in jobs:
            model.train(train)
            flops = factor * counted_flops(model, fn)  # also the warm-up call
            seconds = best_seconds(fn, repeats, warmup=0)
            rows.append((name, precision, seconds, flops / seconds / 1e9))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16 CPU: {torch.backends.mkldnn.is_available()}"
    )
    peak_rows = matmul_peak(args.repeats)
    peak = {d: max(g for _, dt, g in peak_rows if dt == d) for d in ("float32", "bfloat16")}
    print(f"\n{'matmul':<32} {'dtype':<9} {'GFLOP/s':>9} {'of peak':>8}")
    for label, dtype, gflops in peak_rows:
        print(f"{label:<32} {dtype:<9} {gflops:9.1f} {gflops / peak[dtype]:8.0%}")
    print(
        f"\n{'workload (' + args.model + ')':<40} {'prec':<5} {'seconds':>8} {'GFLOP/s':>9} {'of peak':>8}"
    )
    for name, precision, seconds, gflops in workloads(args.model, args.repeats):
        of = gflops / peak["bfloat16" if precision == "bf16" else "float32"]
        print(f"{name:<40} {precision:<5} {seconds:8.3f} {gflops:9.1f} {of:8.1%}")
    print(
        f"\npeak: fp32 {peak['float32']:.0f} GFLOP/s, bf16 {peak['bfloat16']:.0f} GFLOP/s "
        f"(bf16/fp32 {peak['bfloat16'] / peak['float32']:.1f}x); median of all shapes "
        f"fp32 {statistics.median(g for _, d, g in peak_rows if d == 'float32'):.0f}"
    )


if __name__ == "__main__":
    main()
