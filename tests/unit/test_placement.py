"""How often the driver re-reads the cluster's nodes (driver/placement.refresh_interval)."""

from __future__ import annotations

from tune_ckpt.driver.placement import (
    AFTER_LOSS_REFRESH_S,
    AFTER_LOSS_S,
    REFRESH_S,
    REFRESH_SHARE,
    refresh_interval,
)


def test_the_nodes_are_read_every_refresh_s_when_nothing_was_lost() -> None:
    assert refresh_interval(None, 0.001) == REFRESH_S


def test_after_a_loss_a_replacement_node_is_looked_for_more_often() -> None:
    assert AFTER_LOSS_REFRESH_S < REFRESH_S
    assert refresh_interval(0.0, 0.001) == AFTER_LOSS_REFRESH_S
    assert refresh_interval(AFTER_LOSS_S - 1, 0.001) == AFTER_LOSS_REFRESH_S


def test_a_loss_long_ago_no_longer_shortens_the_interval() -> None:
    assert refresh_interval(AFTER_LOSS_S + 1, 0.001) == REFRESH_S


def test_slow_reads_of_a_large_cluster_stretch_the_interval() -> None:
    # A read taking 80 ms may happen at most every 0.8 s, loss or not.
    assert refresh_interval(0.0, 0.08) == 0.08 / REFRESH_SHARE
    assert refresh_interval(None, 0.08) == 0.08 / REFRESH_SHARE
    assert 0.08 / REFRESH_SHARE > REFRESH_S
