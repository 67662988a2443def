"""Micro-benchmarks of the CNNSA 3x3 convolutions on this CPU (paper 3.2 front-end).

  python benchmarks/conv_micro.py [--impl=xla,custom] [--batch=64]

For each conv shape of the paper tower (configs/rori.py) times, separately, the
forward conv, the input gradient and the weight gradient (jax.vjp, float32, NHWC),
and prints GFLOP/s, for `xla` (plain lax.conv_general_dilated and its autodiff) and
`custom` (asa_jax/models/conv.py: 8-clip chunked forward and stride-1 input gradient,
chunked im2col weight gradient); plus a plain float32 matmul (XLA and numpy) as this CPU's
reference peak. XLA_FLAGS from the environment apply (set them before running).
"""

import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from asa_jax.models import conv as conv_lib

FLAGS = flags.FLAGS
flags.DEFINE_list("impl", ["xla", "custom"], "xla (lax.conv) and/or custom (conv.py).")
flags.DEFINE_integer("batch", 64, "Clips per call (64 = positive + negative of 32).")
flags.DEFINE_integer("reps", 3, "Timed repetitions (best is reported).")
flags.DEFINE_list("shapes", ["b1c2", "b2c1", "b2c2", "b3c2", "b4c2"], "Shapes to run.")

# name: (H, W, C_in, C_out, stride) at the input of the conv (paper tower).
SHAPES = {
    "b1c1": (96, 94, 5, 128, (2, 2)),
    "b1c2": (48, 47, 128, 128, (1, 1)),
    "b2c1": (48, 47, 128, 128, (2, 2)),
    "b2c2": (24, 24, 128, 128, (1, 1)),
    "b3c1": (24, 24, 128, 256, (2, 2)),
    "b3c2": (12, 12, 256, 256, (1, 1)),
    "b4c2": (6, 12, 256, 256, (1, 1)),
}


def _best(fn, *args):
  jax.block_until_ready(fn(*args))
  ts = []
  for _ in range(FLAGS.reps):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    ts.append(time.perf_counter() - t)
  return min(ts)


def _xla_conv(x, w, strides):
  return jax.lax.conv_general_dilated(x, w, strides, ((1, 1), (1, 1)),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def main(argv):
  del argv
  rng = np.random.default_rng(0)
  n = 2048
  a = rng.standard_normal((n, n), dtype=np.float32)
  mm = jax.jit(jnp.dot)
  t = _best(mm, a, a)
  print(f"matmul {n}^3 XLA: {2 * n**3 / t / 1e9:.1f} GFLOP/s")
  t = time.perf_counter(); a @ a; t = time.perf_counter() - t
  print(f"matmul {n}^3 numpy: {2 * n**3 / t / 1e9:.1f} GFLOP/s")
  for name in FLAGS.shapes:
    h, w_, cin, cout, s = SHAPES[name]
    x = jnp.asarray(rng.standard_normal((FLAGS.batch, h, w_, cin), dtype=np.float32))
    w = jnp.asarray(rng.standard_normal((3, 3, cin, cout), dtype=np.float32) * 0.05)
    for impl in FLAGS.impl:
      f = (lambda x, w, s=s: _xla_conv(x, w, s)) if impl == "xla" else (
          lambda x, w, s=s: conv_lib.conv3x3(x, w, s))
      y = jax.jit(f)(x, w)
      g = jnp.ones_like(y)
      ho, wo = y.shape[1:3]
      flop = 2 * FLAGS.batch * ho * wo * 9 * cin * cout
      fwd = jax.jit(f)
      dx = jax.jit(lambda x, w, g, f=f: jax.vjp(lambda x: f(x, w), x)[1](g)[0])
      dw = jax.jit(lambda x, w, g, f=f: jax.vjp(lambda w: f(x, w), w)[1](g)[0])
      tf, tx, tw = _best(fwd, x, w), _best(dx, x, w, g), _best(dw, x, w, g)
      print(f"{name} {impl:6s} B={FLAGS.batch} {h}x{w_} {cin}->{cout} s={s}: "
            f"fwd {tf*1e3:6.1f} ms {flop/tf/1e9:5.1f} GF/s | dx {tx*1e3:6.1f} ms "
            f"{flop/tx/1e9:5.1f} GF/s | dw {tw*1e3:6.1f} ms {flop/tw/1e9:5.1f} GF/s",
            flush=True)


if __name__ == "__main__":
  app.run(main)
