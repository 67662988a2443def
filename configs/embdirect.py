"""EmbDirect: a trained Rori's performance tower, frozen, + 3 dense ReLU layers that
regress the score from its clip embedding (paper 3.2.4; Table 2 row "EmbDirect").

`embdirect.rori_config` names the Rori config whose model/feature fields define the
frozen tower (copied here so the shapes match); `embdirect.rori_workdir` must be set
to that Rori's trained workdir (e.g. `--config.embdirect.rori_workdir=runs/rori`).
Only the head trains (optax set_to_zero on the tower + stop_gradient; the tower runs
with running BatchNorm statistics and no dropout). Paper lr 1e-7 (3.4); the
small/demo/ssvd variants use 1e-4 (measured on the demo corpus on top of a short
rori:demo run: 1e-3 overfits the head within one epoch, 1e-4 reached a lower best
validation loss; 1e-7 barely moves the head in a CPU budget; BUILD_NOTES.md). Variants: "" | small | demo | ssvd.
"""

from configs import base, rori, variants

# Learning rate of the head for small / demo / ssvd.
HEAD_LR = 1e-4


def get_config(arg: str | None = None):
  """Returns the EmbDirect config; the Rori config spec is configs/rori.py:<size>.

  Raises:
    ValueError: unknown or conflicting variant words (configs/variants.py).
  """
  c = base.get_config()
  c.system = "embdirect"
  c.data.reference = "original"
  size, _ = variants.apply_variants(c, arg, file="configs/embdirect.py")
  c.embdirect.rori_config = "configs/rori.py" + (f":{size}" if size else "")
  # The frozen tower must have the Rori tower's shape and see the same inputs.
  r = rori.get_config(size)
  for k in ("conv_channels", "conv_strides", "attention_layers", "attention_hidden",
            "attention_heads", "attention_mlp", "embedding_dim", "dtype", "dropout"):
    c.model[k] = r.model[k]
  c.features.channels = r.features.channels
  c.data.key_align = r.data.key_align
  c.train.learning_rate = HEAD_LR if size else 1e-7  # Paper 3.4: 1e-7.
  return c
