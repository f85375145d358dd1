"""``flywheel demo`` (the main job, embedded defaults) and ``flywheel simulate`` (the same with options)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer


def set_threads(requested: int | None, *, busy: float | None = None) -> int:
    """Torch intra-op threads: ``requested``, else the cores other processes leave free right now (at least one):
    spinning OpenMP threads on cores that are busy thrash (measured ~10x slower per query), while a single thread on
    an idle machine makes the demo ~3x slower. ``busy`` (cores in use elsewhere) is sampled when not given."""
    import os

    import torch

    cores = os.cpu_count() or 1
    if requested is None:
        busy = busy_cores() if busy is None else busy
        free = max(1, round(cores - busy))
        if free < cores:
            requested = free
    if requested is not None:
        torch.set_num_threads(requested)
    return int(torch.get_num_threads())


def busy_cores(interval_s: float = 0.5) -> float:
    """Cores busy right now, from two ``/proc/stat`` samples (the load average lags by minutes: a test run that
    just ended would still count); falls back to the 1-minute load average where ``/proc`` is missing."""
    import os
    import time

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        return sum(values), values[3] + (values[4] if len(values) > 4 else 0)  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(interval_s)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return float(os.getloadavg()[0])
    total = total1 - total0
    return (1.0 - (idle1 - idle0) / total) * (os.cpu_count() or 1) if total > 0 else 0.0


def _run(ctx: typer.Context, config: Any, json_path: Path | None, threads: int | None = None) -> None:
    from rich.console import Console

    from flywheel.cli import container_of
    from flywheel.simulate import write_json
    from flywheel.simulate_run import run_simulation

    # Piped or logged output has no terminal width: give the before/after table room instead of rich's 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=132)
    settings = container_of(ctx).settings
    console.print(f"[dim]·[/dim] torch threads: {set_threads(threads)}")
    results = run_simulation(settings, config, progress=lambda msg: console.print(f"[dim]·[/dim] {msg}"))
    print_results(console, results)
    if json_path is not None:
        console.print(f"JSON: {write_json(results, json_path)}")


def print_results(console: Any, results: dict[str, Any]) -> None:
    """The before/after table of held-out metrics per cycle, the verdicts, timings and the report path."""
    from rich.table import Table

    from flywheel.simulate import ANSWER_METRICS, HEADLINE

    split = results["split"]
    table = Table(title=f"held-out questions ({split['heldout']} of {split['questions']}; never trained on)")
    table.add_column("stage")
    for name in HEADLINE:
        table.add_column(name, justify="right")
    table.add_column("Δ MRR@10", justify="right")
    for label in ("sem. sim.", "ROUGE-L"):
        table.add_column(f"{label} ({results.get('generator', 'extractive')})", justify="right")
    table.add_column("gate / decision")
    table.add_column("rejected cand. MRR@10", justify="right")
    table.add_column("cycle s", justify="right")
    base = results["baseline"]
    answers = [_num(base.get(n)) for n in ANSWER_METRICS]
    table.add_row("untuned start", *(f"{base[n]:.4f}" for n in HEADLINE), "", *answers, "", "", "")
    for cy in results["cycles"]:
        m = cy["metrics"]
        delta = (m["mrr@10"] - base["mrr@10"]) / base["mrr@10"] if base["mrr@10"] else 0.0
        gate = {True: "pass", False: "FAIL", None: "-"}[cy["gate"]["passed"]]
        rejected = cy.get("rejected_candidate_metrics")
        table.add_row(f"after cycle {cy['cycle']}", *(f"{m[n]:.4f}" for n in HEADLINE), f"{delta:+.1%}",
                      *(_num(m.get(n)) for n in ANSWER_METRICS), f"{gate} / {cy['status']}",
                      f"{rejected['mrr@10']:.4f}" if rejected else "", f"{cy['timings']['cycle_s']:.0f}")  # fmt: skip
    console.print(table)
    print_lifts(console, results)
    lift = results["lift"]
    console.print(
        f"MRR@10 {lift['start_mrr@10']:.4f} -> {lift['final_mrr@10']:.4f} ({lift['relative']:+.1%} relative); "
        f"promotions {lift['promotions']}, "
        f"promotions lowering held-out MRR@10: {lift['promotions_lowering_mrr'] or 'none'}, "
        f"rejected candidates that would have raised it: {lift['rejections_that_would_have_raised_mrr'] or 'none'}"
    )
    for cy in results["cycles"]:
        if cy["status"] not in ("promoted",):
            console.print(
                f"cycle {cy['cycle']}: {cy['status']} — {cy.get('reason') or '; '.join(cy['gate']['reasons'][:2])}"
            )
    console.print(f"report: {results.get('report') or 'none (no cycle reached the report step)'}")
    console.print(f"wall time: {results['wall_s']:.0f} s")
    timings = results.get("timings", {})
    steps: dict[str, float] = {}
    for cy in results["cycles"]:
        for name, seconds in (cy["timings"].get("steps") or {}).items():
            steps[name] = steps.get(name, 0.0) + float(seconds or 0.0)
        for name in ("traffic_s", "heldout_eval_s"):
            steps[name] = steps.get(name, 0.0) + float(cy["timings"].get(name) or 0.0)
    stages = {"index": timings.get("index_s"), "baseline eval": timings.get("baseline_eval_s"), **steps}
    console.print("time per stage (s, all cycles): " + ", ".join(f"{k} {float(v):.0f}" for k, v in stages.items()
                                                                   if v is not None))  # fmt: skip


def _num(value: Any) -> str:
    return "—" if value is None else f"{float(value):.4f}"


def print_lifts(console: Any, results: dict[str, Any]) -> None:
    """Retrieval and generation lifts side by side: untuned start -> after the last cycle on the reported held-out
    questions, relative, with the 95% paired-bootstrap interval."""
    from rich.table import Table

    lifts = results.get("lifts") or {}
    table = Table(title=f"lift over the untuned start (answers: {results.get('generator', 'extractive')})")
    for column in ("half", "metric", "n", "start", "final", "relative lift", "95% CI (paired bootstrap)"):
        table.add_column(column, justify="left" if column in ("half", "metric") else "right")
    for half, name in (("retrieval", "mrr@10"), ("generation", "semantic_similarity"), ("generation", "rouge_l")):
        lift = lifts.get(name)
        if not lift:
            table.add_row(half, name, "—", "—", "—", "—", "not measured")
            continue
        table.add_row(half, name, str(lift["n"]), f"{lift['start']:.4f}", f"{lift['final']:.4f}",
                      f"{lift['relative']:+.1%}", f"[{lift['ci_low']:+.1%}, {lift['ci_high']:+.1%}]")  # fmt: skip
    adapter = results.get("adapter_vs_base") or {}
    for name in ("semantic_similarity", "rouge_l"):
        lift = adapter.get(name)
        if lift:
            table.add_row(f"adapter {adapter['adapter']} vs base", name, str(lift["n"]), f"{lift['start']:.4f}",
                          f"{lift['final']:.4f}", f"{lift['relative']:+.1%}",
                          f"[{lift['ci_low']:+.1%}, {lift['ci_high']:+.1%}]")  # fmt: skip
    console.print(table)
    if adapter and not adapter.get("adapter"):
        console.print(f"adapter vs base: {adapter.get('reason')}")


HF_ANSWER_CASES = 64  # `demo --generator hf`: held-out questions answered per measurement (2-core time budget)
HF_GATE_ANSWER_CASES = 40  # ... and gate cases each arm answers in a cycle


def _default(name: str) -> Any:
    """The default of a ``SimulationConfig`` field, so ``flywheel simulate`` without options is ``flywheel demo``."""
    from flywheel.simulate import SimulationConfig

    return SimulationConfig.__dataclass_fields__[name].default


def register(app: typer.Typer) -> None:
    """Add ``demo`` and ``simulate``."""

    @app.command()
    def demo(
        ctx: typer.Context,
        json_path: Path = typer.Option(None, "--json", help="also write per-cycle metrics, verdicts, timings here"),
        threads: int = typer.Option(None, "--threads", min=1, help="torch threads (default: auto)"),
        generator: str = typer.Option(
            "extractive", "--generator", help="extractive | hf (SmolLM2 LoRA-tuned every cycle on the corrections)"
        ),
    ) -> None:
        """The main job: index the built-in FAQ, simulate agents and their feedback, run 3 cycles, show the
        retrieval and generation lifts."""
        from flywheel.simulate import SimulationConfig

        if generator not in ("extractive", "hf"):
            raise typer.BadParameter("one of extractive, hf", param_hint="--generator")
        hf = generator == "hf"
        config = SimulationConfig(generator=generator, answer_cases=HF_ANSWER_CASES if hf else _default("answer_cases"),
                                  gate_answer_cases=HF_GATE_ANSWER_CASES if hf else None)  # fmt: skip
        _run(ctx, config, json_path, threads)

    @app.command()
    def simulate(
        ctx: typer.Context,
        dataset: Path = typer.Option(None, "--dataset", help='JSONL of {"question","answer","id"?,"category"?}'),
        noise: float = typer.Option(_default("noise"), "--noise", help="share of wrong agent reactions, 0 .. 0.5"),
        cycles: int = typer.Option(_default("cycles"), "--cycles", min=1, max=20, help="cycles to run"),
        seed: int = typer.Option(_default("seed"), "--seed", help="seed of split, agents and training"),
        holdout: float = typer.Option(_default("holdout_share"), "--holdout", help="share of questions held out"),
        limit: int = typer.Option(None, "--limit", min=10, help="use only the first N questions"),
        epochs: int = typer.Option(None, "--epochs", min=1, help="embedder epochs per cycle (default: the recipe's)"),
        training: str = typer.Option(
            None, "--training", help="JSON of embedder training overrides, e.g. '{\"hard_negatives\": 1}'"
        ),
        gate_holdout: float = typer.Option(
            _default("gate_holdout_share"),
            "--gate-holdout",
            help="share of asked questions curation keeps as the gate's eval cases",
        ),
        gold_share: float = typer.Option(
            _default("gold_share"), "--gold-share", help="share of held-out questions given to the gate"
        ),
        agents: int = typer.Option(_default("agents"), "--agents", min=1, help="simulated agents"),
        generator: str = typer.Option(_default("generator"), "--generator", help="extractive | hf"),
        answer_cases: int = typer.Option(
            _default("answer_cases"), "--answer-cases", min=1, help="held-out questions answered per measurement"
        ),
        max_new_tokens: int = typer.Option(None, "--max-new-tokens", min=8, help="hf answer length"),
        gate_answer_cases: int = typer.Option(
            None, "--gate-answer-cases", min=1, help="gate cases each arm answers per cycle (default: --answer-cases)"
        ),
        sft: str = typer.Option(
            None, "--sft", help="JSON of LoRA overrides for the hf adapter, e.g. '{\"epochs\": 1}' (see DEMO_SFT)"
        ),
        json_path: Path = typer.Option(None, "--json", help="also write per-cycle metrics, verdicts, timings here"),
        threads: int = typer.Option(None, "--threads", min=1, help="torch threads (default: auto)"),
    ) -> None:
        """The demo's simulation with options, for any labelled JSONL dataset."""
        from flywheel.simulate import DEMO_SFT, DEMO_TRAINING, SimulationConfig

        recipe = {**DEMO_TRAINING, **_json_object(training, "--training")}
        if epochs:
            recipe["epochs"] = epochs
        config = SimulationConfig(dataset=dataset, noise=noise, cycles=cycles, seed=seed, holdout_share=holdout,
                                  limit=limit, training=recipe, gate_holdout_share=gate_holdout,
                                  gold_share=gold_share, agents=agents, generator=generator,
                                  answer_cases=answer_cases, max_new_tokens=max_new_tokens,
                                  gate_answer_cases=gate_answer_cases,
                                  generator_training={**DEMO_SFT, **_json_object(sft, "--sft")})  # fmt: skip
        _run(ctx, config, json_path, threads)


def _json_object(text: str | None, option: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object ({} when not given); a CLI error for anything else."""
    import json

    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc.msg}", param_hint=option) from exc
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint=option)
    return value
