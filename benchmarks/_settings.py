"""Run sizes for quick (CI) and full mode."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How big and how often every benchmark runs.

    Attributes:
        quick: True for the CI smoke run (small sizes, about two minutes), False for the full run.
        sizes: the N of the overhead, bulk and scale benchmarks, smallest first.
        workers: the K of the overhead and bulk benchmarks.
        rounds: interleaved rounds (every variant at every N runs once per round).
        peers_up_to: the aiojobs and bare ``create_task`` peers run only for N up to this
            (they are context, not targets, and would double the full run's time).
        latency_samples: UI submits measured per variant in the preemption benchmark.
        memory_tasks: tasks queued per memory measurement.
        memory_repeats: fresh subprocesses per variant in the memory benchmark.
        resume_steps: S, the steps of the resumable job.
        resume_preemptions: the values of P in the resume benchmark.
        checkpoint_saves: durable saves per round of the checkpoint cost benchmark.
        service_seconds: seconds per load phase of the service benchmark (full mode only).
        seed: seed of every random choice, so two runs ask the same questions.
    """

    quick: bool
    sizes: tuple[int, ...]
    workers: tuple[int, ...]
    rounds: int
    peers_up_to: int
    latency_samples: int
    memory_tasks: int
    memory_repeats: int
    resume_steps: int
    resume_preemptions: tuple[int, ...]
    checkpoint_saves: int = 500
    service_seconds: float = 5.0
    seed: int = 20261126


QUICK = Settings(
    quick=True,
    sizes=(1_000, 10_000),
    workers=(1, 4),
    rounds=3,
    peers_up_to=1_000,
    latency_samples=200,
    memory_tasks=10_000,
    memory_repeats=1,
    resume_steps=200,
    resume_preemptions=(5,),
    checkpoint_saves=50,
)

FULL = Settings(
    quick=False,
    sizes=(10_000, 100_000),
    workers=(1, 4, 16),
    rounds=4,
    peers_up_to=10_000,
    latency_samples=1_000,
    memory_tasks=50_000,
    memory_repeats=3,
    resume_steps=1_000,
    resume_preemptions=(1, 5, 20),
    checkpoint_saves=2_000,
)
