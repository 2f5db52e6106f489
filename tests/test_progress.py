"""Progress in logs: plain lines when stderr is not a terminal, a bar when it is."""

from __future__ import annotations

import io

import pytest

from tfuq import _progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    bar = _progress.bar(1000, "MC passes", "img", stream)
    for _ in range(100):
        bar.update(10)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    # A line per tenth (100, 200, ... 900) and the last one at 1000.
    assert [line.split()[2] for line in lines] == [f"{k * 100}/1000" for k in range(1, 11)]
    assert lines[-1].startswith("MC passes: 1000/1000 img (100%)")


def test_plain_lines_for_a_wrapped_iterable_and_uneven_steps():
    stream = io.StringIO()
    items = list(_progress.bar(7, "calibrating", "img", stream, iterable=range(7)))
    assert items == list(range(7))
    counts = [line.split()[1] for line in stream.getvalue().splitlines()]
    assert counts == [f"{k}/7" for k in range(1, 8)]  # 7 < 10 steps: every item, then done
    stream = io.StringIO()
    bar = _progress.bar(45, "x", "img", stream)
    bar.update(45)  # one big step: only the final line
    bar.close()
    assert stream.getvalue().splitlines() == [stream.getvalue().splitlines()[0]]
    assert "45/45" in stream.getvalue()


def test_a_bar_on_a_terminal():
    stream = Terminal()
    bar = _progress.bar(10, "MC passes", "img", stream)
    bar.update(10)
    bar.close()
    assert "\r" in stream.getvalue()  # tqdm redraws


def test_train_prints_one_line_per_epoch_without_progress_and_no_bars_in_a_log(capfd):
    pytest.importorskip("tensorflow")
    from tests._dummies import tiny
    from tfuq.training import train

    images, labels = tiny.images(32, seed=1)
    for progress in (False, True):  # pytest's captured stderr is not a terminal
        train.train(tiny.model(), images, labels, epochs=2, batch_size=16, validation_split=0.0,
                    progress=progress)
        err = capfd.readouterr().err
        lines = [line for line in err.splitlines() if line.startswith("epoch ")]
        assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
        assert "loss" in lines[0] and "\r" not in err
