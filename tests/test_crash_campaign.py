"""A bounded crash campaign: after ``kill -9`` at random moments of short runs, runs with
artifacts, registry writes and ``gittrack recover`` itself, ``gittrack recover`` alone brings
the repository back with nothing lost. The long campaign is ``tests/soak/crash_campaign.py``."""

from __future__ import annotations

from pathlib import Path

from .soak.crash_campaign import make_repository, run_campaign


def test_recover_alone_brings_the_repository_back_after_kills_at_random_moments(
    tmp_path: Path,
) -> None:
    repo = make_repository(tmp_path / "repo")
    counts = run_campaign(repo, kills=6, minutes=None, seed=11, max_delay=0.8)

    assert counts.kills == 6
    assert counts.points_checked > 0
    assert counts.problems == []
    assert not counts.lost_anything
