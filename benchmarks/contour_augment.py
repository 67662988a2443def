"""Throughput of the on-device contour degradation (issue 18): jitted
`input_pipeline.contour_degrade.degrade_batch` on synthetic contours, and the
contour_rori augmentation (two degradations + the model's input channels).

  PYTHONPATH=. python benchmarks/contour_augment.py [--batch=32 --frames=640]

Prints rows per second; compare with the train step's steps/s in metrics.jsonl.
"""

import argparse
import time

import jax
import jax.numpy as jnp

from asa_jax.systems import contour
from input_pipeline import contour_degrade as cd
from tests import contour_worker


def main() -> None:
  ap = argparse.ArgumentParser()
  ap.add_argument("--batch", type=int, default=32)
  ap.add_argument("--frames", type=int, default=640)
  ap.add_argument("--repeats", type=int, default=20)
  a = ap.parse_args()
  b = contour_worker.synthetic_batch(a.batch, a.frames)
  c = cd.Contour(**{k: jnp.asarray(v) for k, v in b.items()})
  deg = jax.jit(lambda key: cd.degrade_batch(key, c)[1].cents)
  feats = jax.jit(lambda key: contour.contour_channels(
      deg(key), c.voiced))
  for name, fn in (("degrade_batch", deg), ("degrade + channels", feats)):
    fn(jax.random.PRNGKey(0)).block_until_ready()
    t = time.perf_counter()
    for i in range(a.repeats):
      out = fn(jax.random.PRNGKey(i))
    out.block_until_ready()
    dt = (time.perf_counter() - t) / a.repeats
    print(f"{name}: {dt * 1e3:.1f} ms per batch of {a.batch} x {a.frames} frames, "
          f"{a.batch / dt:.0f} rows/s ({jax.devices()[0].platform})")


if __name__ == "__main__":
  main()
