"""Seeded random programs against the executor state machine, many per minute.

The hypothesis state machine (``test_state_machine.py``) explores programs with shrinking
and a fixed budget; a rare, timing-dependent failure may show up only once in many CI
runs. This driver plays the same rules (submit, loop steps, both cancels, shutdowns,
replacing the executor) from a seeded ``random.Random``, checks the machine's invariants
after every step and its final checks at the end, and stops at the first failing seed,
printing the executor's state. A failing seed replays the same program (its timing, with
sync computes in threads, may still vary).

Usage, from the repository root::

    python tests/stress/fuzz.py --config single --seeds 400 --first 0
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent.parent)]

import test_state_machine as machines  # noqa: E402
from _calls import NEVER, Spec  # noqa: E402

from microscheduler import Priority  # noqa: E402

_PRIORITIES = [Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND] * 2 + [Priority.BACKGROUND]
_KINDS = ["steps", "steps", "raises", "stubborn", "stubborn", "sync", "unrestorable"]


def random_spec(rng: random.Random) -> Spec:
    """A call drawn as the state machine's ``specs`` strategy draws one."""
    return Spec(
        priority=rng.choice(_PRIORITIES),
        kind=rng.choice(_KINDS),
        steps=rng.randint(0, 10),
        checkpoint=rng.random() < 0.5,
        polite=rng.random() < 0.5,
        stubborn=rng.choice(["reraise", "return", "continue"]),
        no_reschedule=rng.choice([False, False, True]),
        snapshot=rng.choice([None, 0, 1, 2, 3]),
        task_timeout=rng.choice([None] * 5 + [0.0, NEVER]),
        call_timeout=rng.choice([None] * 5 + [0.0, NEVER]),
        via=rng.choice(["execute", "submit", "submit_nowait"]),
    )


def play(machine: machines.ExecutorMachine, rng: random.Random, steps: int) -> None:
    """Play ``steps`` random rules, checking the invariants after each."""
    for _ in range(steps):
        draw = rng.random()
        if draw < 0.55:
            machine.submit(random_spec(rng), rng.randint(0, 4))
        elif draw < 0.7:
            machine.run_loop(rng.randint(1, 25))
        elif draw < 0.8:
            machine.cancel_caller(rng.randint(0, 1000))
        elif draw < 0.9:
            machine.cancel_handle(rng.randint(0, 1000))
        elif not machine.era.shutdown_started:
            if rng.random() < 0.3:
                machine.shutdown(rng.random() < 0.5, rng.random() < 0.5, rng.randint(0, 1))
        elif len(machine.eras) < 5 and rng.random() < 0.5:
            machine.replace_executor()
        else:
            machine.shutdown_again(rng.random() < 0.5)
        machine.ledger.check_no_violation()
        machine.ledger.check_statistics()


def report(machine: machines.ExecutorMachine) -> None:
    """Print what the current executor holds: statistics, lanes, workers."""
    executor = machine.era.executor
    print("statistics:", executor.statistics())
    for lane in executor._lanes:
        print(f"  lane {lane.priority}: new {lane._new}, reruns {lane._reruns}, dead {lane._dead}")
    for task, worker in executor._worker_of_task.items():
        state = "done" if task.done() else "running"
        print(f"  {worker!r}: task {state}, cancelled={task.cancelled()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="single", choices=sorted(machines.MACHINES))
    parser.add_argument("--seeds", type=int, default=400)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--hang-guard", type=float, default=3.0, help="seconds")
    args = parser.parse_args()
    machines.HANG_GUARD = args.hang_guard
    cls = machines._machine(f"Fuzz_{args.config}", machines.MACHINES[args.config])
    for seed in range(args.first, args.first + args.seeds):
        machine = cls()
        try:
            play(machine, random.Random(seed), args.steps)
            machine.run(machine.wind_down())
            machine.final_checks()
        except AssertionError as failure:
            print(f"seed {seed} ({args.config}) failed: {failure}")
            report(machine)
            return 1
        finally:
            machine.close_loop()
    print(f"{args.seeds} programs ({args.config}, seeds {args.first}..) passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
