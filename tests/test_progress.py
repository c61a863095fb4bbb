"""Progress bars: a line every few seconds in a log, not one per update."""

import io

from simple_diffusion import progress


class Clock:
    """A fake clock that moves one second at each look."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def lines_for(stream, monkeypatch, updates=300):
    import tqdm.std

    clock = Clock()
    monkeypatch.setattr(tqdm.std, "time", clock)
    with progress.bar(updates, desc="training", unit="epoch", file=stream) as bar:
        for _ in range(updates):
            bar.update()
    return stream.getvalue().count("training"), clock.now


def test_a_log_gets_a_line_every_ten_seconds(monkeypatch):
    count, seconds = lines_for(io.StringIO(), monkeypatch)
    assert count <= seconds / progress.LOG_INTERVAL + 3  # plus the first and the last
    assert count >= 3


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_live_updates(monkeypatch):
    count, _ = lines_for(Terminal(), monkeypatch)
    assert count > 100


def test_training_writes_a_line_every_ten_seconds_to_a_log(monkeypatch, capsys):
    """The demo's log held a line per epoch (366 kB of bars) before."""
    import tqdm.std

    import simple_diffusion as sd

    clock = Clock()
    monkeypatch.setattr(tqdm.std, "time", clock)
    sd.fit("two_gaussians", config={"train": {"epochs": 60}, "model": {"hidden": [8]}})
    lines = capsys.readouterr().err.count("training")
    assert lines <= clock.now / progress.LOG_INTERVAL + 3


def test_a_process_left_no_rows_shows_no_bar_and_one_with_rows_shows_its_own(capsys):
    """Under --nproc a small job may leave rank 0 no rows: it showed an empty bar ("0.00pt")."""
    import simple_diffusion as sd

    model = sd.fit("two_gaussians", epochs=1, progress=False)
    capsys.readouterr()
    assert list(model.sample_chunks(5_000, seed=0, rows=range(0), progress=True, num_steps=2)) == []
    assert "sampling" not in capsys.readouterr().err
    list(model.sample_chunks(5_000, seed=0, rows=range(4096, 5000), progress=True, num_steps=2))
    assert "904/904" in capsys.readouterr().err
