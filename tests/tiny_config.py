"""Tiny Rori config for train.py subprocess tests: `--config=tests/tiny_config.py`.

`fake_loader.tiny_config(blocks=4)` (8 conv channels, 4 residual blocks, 1 attention
layer, 8-d embedding; compiles in seconds on CPU) without the progress bar. Run
settings (records_dir, optimizer, epochs, ...) come from --config.* overrides. Needs
the repository root on sys.path (PYTHONPATH).
"""

from tests import fake_loader


def get_config(arg: str | None = None):
  """configs/rori.py:small (or the variant words in `arg`) with the tiny tower."""
  c = fake_loader.tiny_config(arg or "small", blocks=4)
  c.train.progress_bar = False
  return c
