"""examples/train_vs_bots.py: a seat trained from the trainer's process against bots that
run as their own processes learns, in the short (--quick) run CI can afford."""

from __future__ import annotations

import re

import pytest
from support.paths import ROOT

FINAL = re.compile(r"^return before training: (-?[\d.]+), after: (-?[\d.]+) ")


def test_the_training_example_learns_against_bots_in_their_own_processes(procs):
    pytest.importorskip("gymnasium")
    example = procs([f"{ROOT}/examples/train_vs_bots.py", "--quick", "--seed", "0"], name="train")
    assert example.wait(120) == 0, example.stdout + example.stderr
    lines = example.stdout.strip().splitlines()
    curve = [line for line in lines if line.startswith("episodes ")]
    assert len(curve) == 5, example.stdout  # 60 episodes, one line per 12
    match = FINAL.match(lines[-1])
    assert match, example.stdout
    before, after = float(match[1]), float(match[2])
    # The untrained policy is the uniform random one (about one resource per 50-tick episode
    # against the greedy bot); 3 more per episode is far beyond what chance gives it.
    assert after >= before + 3.0, example.stdout
