"""tfuq.quiet: output at the file-descriptor level held back, and replayed when the block fails."""

import os

import pytest

from tfuq.quiet import held_output


def test_held_output_holds_back_fd_output_but_not_the_progress_stream(capfd):
    with held_output() as progress:
        os.write(2, b"C++ chatter\n")
        os.write(1, b"export listing\n")
        progress.write("50%\n")
    out, err = capfd.readouterr()
    assert "C++ chatter" not in err and "export listing" not in out
    assert "50%" in err


def test_held_output_replays_what_it_held_when_the_block_fails(capfd):
    with pytest.raises(RuntimeError, match="converter failed"):
        with held_output():
            os.write(2, b"the reason it failed\n")
            raise RuntimeError("converter failed")
    assert "the reason it failed" in capfd.readouterr().err
    os.write(2, b"after\n")  # the descriptors are back
    assert capfd.readouterr().err == "after\n"
