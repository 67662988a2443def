"""asa-jax: automatic singing assessment by deep metric learning in JAX/Flax.

Reimplements Zhang, Jiang, Jiang, Hu, "Learn by Referencing: Towards Deep Metric
Learning for Singing Assessment", ISMIR 2021.
"""

__version__ = "0.1.0"
