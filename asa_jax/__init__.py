"""asa-jax: automatic singing assessment by deep metric learning in JAX/Flax.

Reimplements Zhang, Jiang, Jiang, Hu, "Learn by Referencing: Towards Deep Metric
Learning for Singing Assessment", ISMIR 2021.
"""

from asa_jax import numba_cache as _numba_cache

__version__ = "0.1.0"

# Before librosa is imported anywhere: numba's cache goes to a folder of ours that
# only one process writes at a time (see asa_jax/numba_cache.py).
_numba_cache.configure()
