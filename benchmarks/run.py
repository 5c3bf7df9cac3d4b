"""flagdemo's benchmark suite: ``python -m benchmarks.run`` (``make bench``) prints a table and writes JSON.

Every comparison runs in this one process, the contenders alternating run by run, and reports the median of
``--runs`` runs, so a noisy shared machine slows both sides alike. Sections that cannot run here (no CUDA, no app)
are reported as skipped with the reason. Timings are reported, never asserted: correctness lives in tests/perf.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

from benchmarks.report import RESULTS_DIR, Report
from flagdemo.models.backends.cpu import cpu_features, describe

# app also times UMAP
SECTIONS = (
    "matmul", "encode", "agreement", "coldstart", "cache", "rerank", "sweep", "load", "cuda", "app", "statistics",
    "corpus",
)  # fmt: skip
ST_MAX_LENGTH = 256  # all-MiniLM-L6-v2's max_seq_length in sentence-transformers; flagdemo gets the same


def seconds_of(function: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def alternate(contenders: dict[str, Callable[[], object]], runs: int, *, warmup: bool = True) -> dict[str, float]:
    """Median seconds per contender; each round runs every contender once, the starting one rotating. With
    ``warmup`` every contender first runs once untimed (lazy initialisation, allocator and kernel caches)."""
    names = list(contenders)
    if warmup:
        for name in names:
            contenders[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(runs):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            seconds[name].append(seconds_of(contenders[name]))
    return {name: statistics.median(values) for name, values in seconds.items()}


def mixed_texts(count: int, seed: int = 0) -> list[str]:
    """``count`` texts of 5-200 words drawn from the labelled set's own vocabulary (deterministic)."""
    from flagdemo.data.datasets import load_retrieval_set

    retrieval_set = load_retrieval_set()
    words = " ".join([*retrieval_set.passage_texts.values(), *retrieval_set.query_texts.values()]).split()
    rng = random.Random(seed)
    return [" ".join(rng.choices(words, k=rng.randint(5, 200))) for _ in range(count)]


def matmul_peak(runs: int) -> float:
    """GFLOP/s of a 2048³ fp32 matmul, the machine's practical peak for the FLOP shares below."""
    size = 2048
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    seconds = alternate({"matmul": lambda: a @ b}, max(runs, 5))["matmul"]
    return 2 * size**3 / seconds / 1e9


def encoder_flops(model: torch.nn.Module, token_counts: list[int]) -> float:
    """Useful FLOPs of a BERT-style encoder over unpadded sequences: 2·(linear weights)·tokens + attention."""
    config = model.config
    hidden, layers = config.hidden_size, config.num_hidden_layers
    linear_weights = layers * (4 * hidden * hidden + 2 * hidden * config.intermediate_size)
    return float(sum(2 * linear_weights * n + layers * 4 * n * n * hidden for n in token_counts))


class OnnxRuntimePeer:
    """The peer a CPU user would pick: a plain ONNX Runtime session of the same model, exported with torch.onnx and
    fused with onnxruntime's transformer optimizer (what fastembed and sentence-transformers' ``backend="onnx"``
    run), driven by sentence-transformers' loop: texts sorted by length, tokenised per batch, mean pooled and
    normalised in numpy."""

    def __init__(self, folder: str, workdir: Path) -> None:
        import onnxruntime
        from onnxruntime.transformers import optimizer
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
        sample = dict(self.tokenizer(["a probe sentence", "a"], padding=True, return_tensors="pt"))
        names = list(sample)

        class LastHiddenState(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *tensors):
                return self.model(**dict(zip(names, tensors, strict=True))).last_hidden_state

        raw, fused = workdir / "peer.onnx", workdir / "peer-fused.onnx"
        axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState().eval(), tuple(sample.values()), str(raw), input_names=names,
                output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False,
            )  # fmt: skip
        config = model.config
        optimised = optimizer.optimize_model(
            str(raw), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size,
            opt_level=0, use_gpu=False,
        )  # fmt: skip
        optimised.save_model_to_file(str(fused))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(fused), options, providers=["CPUExecutionProvider"])
        self.input_names = [item.name for item in self.session.get_inputs()]

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        order = np.argsort([-len(text) for text in texts], kind="stable")
        vectors = []
        for start in range(0, len(texts), batch_size):
            chunk = [texts[i] for i in order[start : start + batch_size]]
            encoded = self.tokenizer(
                chunk, padding=True, truncation=True, max_length=ST_MAX_LENGTH, return_tensors="np"
            )
            feed = {name: encoded[name].astype(np.int64) for name in self.input_names}
            hidden = self.session.run(None, feed)[0]
            mask = encoded["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            vectors.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        result = np.concatenate(vectors)
        return result[np.argsort(order)]


COLD_START = """
import sys, time
from flagdemo.models.embedders import FlagModel
model = FlagModel(sys.argv[1], pooling_method="mean", use_fp16=False, backend=sys.argv[2])
model.encode(["a first request"])
print(model.backend_info.source)
"""


def cold_start_seconds(folder: str, backend: str, cache: Path) -> tuple[float, str]:
    """Wall seconds of a fresh Python process that loads MiniLM on ``backend`` and encodes one text, and where its
    graph came from (``exported`` / ``disk cache`` / ``None``)."""
    import subprocess

    env = {**os.environ, "FLAGDEMO_CACHE": str(cache)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", COLD_START, folder, backend], env=env, capture_output=True, text=True, check=True
    )
    return time.perf_counter() - started, done.stdout.strip().splitlines()[-1]


def bench_cold_start(report: Report, args) -> None:
    import tempfile

    from flagdemo.models.sources import bundled_minilm_dir

    folder = str(bundled_minilm_dir())
    with tempfile.TemporaryDirectory() as empty:
        rows = {
            "torch": cold_start_seconds(folder, "torch", Path(empty)),
            "onnx, no cached graph (exports it)": cold_start_seconds(folder, "onnx", Path(empty)),
            "onnx, cached graph": cold_start_seconds(folder, "onnx", Path(empty)),
        }
    for name, (seconds, source) in rows.items():
        report.add(
            "cold start", f"MiniLM {name}: process start → first embedding", f"{seconds:.1f} s", seconds=seconds,
            graph=source,
        )  # fmt: skip


def bench_encode(report: Report, args, peak: float | None) -> None:
    import tempfile

    from sentence_transformers import SentenceTransformer

    from flagdemo.models.backends.precision import with_precision
    from flagdemo.models.embedders import FlagModel
    from flagdemo.models.sources import bundled_minilm_dir

    folder = str(bundled_minilm_dir())
    texts = mixed_texts(args.texts)
    exact = FlagModel(folder, pooling_method="mean", use_fp16=False, passage_max_length=ST_MAX_LENGTH, backend="torch")
    exact_onnx = FlagModel(
        folder, pooling_method="mean", use_fp16=False, passage_max_length=ST_MAX_LENGTH, backend="onnx"
    )
    reference = SentenceTransformer(folder, device="cpu")
    with tempfile.TemporaryDirectory() as workdir:
        peer = OnnxRuntimePeer(folder, Path(workdir))
    # torch: exact fp32 and the two torch fast modes; onnx: exact fp32 and int8 on ONNX Runtime.
    modes = {precision: with_precision(exact, precision) for precision in ("fp32", "bf16", "int8")}
    modes |= {f"onnx {precision}": with_precision(exact_onnx, precision) for precision in ("fp32", "int8")}
    token_counts = [len(ids) for ids in exact.tokenizer(texts, truncation=True, max_length=ST_MAX_LENGTH)["input_ids"]]
    n_tokens = sum(token_counts)
    flops = encoder_flops(exact.model, token_counts)
    report.add("encode", "texts / tokens", f"{len(texts)} texts, {n_tokens} tokens (5-200 words, max 256 tokens)")
    for batch_size in args.batch_sizes:
        outputs: dict[str, np.ndarray] = {}
        # Without AMX, bf16 is slower than fp32 on a CPU: it is then timed at the first batch size only, which saves
        # a third of this section's run time and loses no news.
        timed = [p for p in modes if p != "bf16" or batch_size == args.batch_sizes[0] or "amx_bf16" in cpu_features()]

        def run(name: str, encode: Callable[[], np.ndarray], outputs=outputs) -> Callable[[], None]:
            return lambda: outputs.__setitem__(name, encode())

        contenders = {
            "sentence-transformers fp32": run(
                "st", lambda b=batch_size: reference.encode(texts, batch_size=b, normalize_embeddings=True)
            ),
            "peer onnxruntime fp32": run("peer", lambda b=batch_size: peer.encode(texts, batch_size=b)),
            **{
                f"flagdemo {label(name)}": run(name, lambda m=modes[name], b=batch_size: m.encode(texts, batch_size=b))
                for name in timed
            },
        }
        warm_texts = texts[:64]
        reference.encode(warm_texts, batch_size=batch_size)
        peer.encode(warm_texts, batch_size=batch_size)
        for precision in timed:
            modes[precision].encode(warm_texts, batch_size=batch_size)
        medians = alternate(contenders, args.runs, warmup=False)
        st_seconds = medians["sentence-transformers fp32"]
        peer_seconds = medians["peer onnxruntime fp32"]
        for name, seconds in medians.items():
            texts_per_s, tokens_per_s = len(texts) / seconds, n_tokens / seconds
            share = f", {flops / seconds / 1e9 / peak:.0%} of matmul peak" if peak else ""
            ratio = st_seconds / seconds
            report.add(
                "encode",
                f"{name} batch {batch_size}",
                f"{texts_per_s:.1f} texts/s, {tokens_per_s:.0f} tok/s, {ratio:.2f}x ST, "
                f"{peer_seconds / seconds:.2f}x peer{share}",
                seconds=seconds,
                texts_per_second=texts_per_s,
                tokens_per_second=tokens_per_s,
                ratio_vs_sentence_transformers=ratio,
                ratio_vs_peer=peer_seconds / seconds,
                gflops=flops / seconds / 1e9,
            )
        fp32 = outputs["fp32"]
        for name in ("st", "peer", "onnx fp32"):
            difference = float(np.abs(outputs[name] - fp32).max())
            report.add(
                "encode",
                f"{name} vs flagdemo torch fp32 max abs diff (batch {batch_size})",
                f"{difference:.2e}",
                max_abs_diff=difference,
            )
        for precision in (p for p in timed if p not in ("fp32", "onnx fp32")):
            cosine = (outputs[precision] * fp32).sum(axis=1)
            report.add(
                "fast mode",
                f"{label(precision)} cosine to fp32 (batch {batch_size})",
                f"min {cosine.min():.5f}, mean {cosine.mean():.5f}",
                min_cosine=float(cosine.min()),
                mean_cosine=float(cosine.mean()),
            )


def ranking_agreement(exact: tuple[np.ndarray, np.ndarray], fast: tuple[np.ndarray, np.ndarray], k: int = 10) -> dict:
    """How far a fast mode's (queries, passages) embeddings stay from the exact ones: cosines per text and, per
    query, whether the top-1, the top-k set and the top-k order are unchanged, and the largest change of a
    query-passage score."""
    cosines = np.concatenate([(f * e).sum(axis=1) for e, f in zip(exact, fast, strict=True)])
    score_shift = np.abs(fast[0] @ fast[1].T - exact[0] @ exact[1].T).max()

    def top(queries: np.ndarray, passages: np.ndarray) -> np.ndarray:
        return np.argsort(-(queries @ passages.T), axis=1, kind="stable")[:, :k]

    exact_top, fast_top = top(*exact), top(*fast)
    overlap = np.array([len(set(a) & set(b)) for a, b in zip(exact_top, fast_top, strict=True)])
    return {
        "queries": len(exact_top),
        "min_cosine": float(cosines.min()),
        "mean_cosine": float(cosines.mean()),
        "top1_kept": int((exact_top[:, 0] == fast_top[:, 0]).sum()),
        "same_topk_set": int((overlap == k).sum()),
        "same_topk_order": int((exact_top == fast_top).all(axis=1).sum()),
        "min_topk_overlap": int(overlap.min()),
        "mean_topk_overlap": float(overlap.mean()),
        "max_score_shift": float(score_shift),
    }


def label(mode: str) -> str:
    """A flagdemo mode's row name: 'onnx int8' stays, 'fp32' becomes 'torch fp32'."""
    return mode if mode.startswith("onnx") else f"torch {mode}"


def bench_fast_mode_agreement(report: Report) -> None:
    """The fast modes against exact fp32 on the labelled set (48 queries, 321 passages)."""
    from flagdemo.data.datasets import load_retrieval_set
    from flagdemo.models.backends.precision import with_precision
    from flagdemo.models.embedders import FlagModel
    from flagdemo.models.sources import bundled_minilm_dir

    retrieval_set = load_retrieval_set()
    queries, passages = list(retrieval_set.query_texts.values()), list(retrieval_set.passage_texts.values())
    exact = {
        backend: FlagModel(str(bundled_minilm_dir()), pooling_method="mean", use_fp16=False, backend=backend)
        for backend in ("torch", "onnx")
    }
    exact_vectors = (exact["torch"].encode(queries), exact["torch"].encode(passages))
    for mode in ("bf16", "int8", "onnx int8"):
        fast = with_precision(exact["onnx" if mode.startswith("onnx") else "torch"], mode.split()[-1])
        agreement = ranking_agreement(exact_vectors, (fast.encode(queries), fast.encode(passages)))
        n = agreement["queries"]
        report.add(
            "fast mode",
            f"{label(mode)} vs fp32 on the labelled set",
            f"cosine min {agreement['min_cosine']:.5f}, mean {agreement['mean_cosine']:.5f}; "
            f"top-1 kept {agreement['top1_kept']}/{n}; top-10 same set {agreement['same_topk_set']}/{n}, "
            f"same order {agreement['same_topk_order']}/{n}, ≥ {agreement['min_topk_overlap']} of 10 kept; "
            f"largest score change {agreement['max_score_shift']:.4f}",
            **agreement,
        )


def bench_cache(report: Report, args) -> None:
    from flagdemo.models.embedders import FlagModel
    from flagdemo.models.sources import bundled_minilm_dir
    from flagdemo.serving.embedding_cache import EmbeddingCache

    embedder = FlagModel(str(bundled_minilm_dir()), pooling_method="mean", use_fp16=False)
    texts = mixed_texts(min(args.texts, 200), seed=1)
    cold, warm = [], []
    for _ in range(args.runs):
        cache = EmbeddingCache()
        cold.append(seconds_of(lambda c=cache: c.encode(embedder, texts, mode="raw")))
        warm.append(seconds_of(lambda c=cache: c.encode(embedder, texts, mode="raw")))
    cold_s, warm_s = statistics.median(cold), statistics.median(warm)
    report.add(
        "cache",
        f"{len(texts)} texts first vs repeated",
        f"{cold_s * 1000:.0f} ms vs {warm_s * 1000:.2f} ms = {cold_s / warm_s:.0f}x",
        first_seconds=cold_s,
        repeated_seconds=warm_s,
        speedup=cold_s / warm_s,
    )


def rerank_pairs(count: int) -> list[tuple[str, str]]:
    from flagdemo.data.datasets import load_retrieval_set

    retrieval_set = load_retrieval_set()
    queries, passages = retrieval_set.query_texts, retrieval_set.passage_texts
    pairs = [(queries[q], passages[p]) for q, judged in retrieval_set.judgements.items() for p in judged]
    return (pairs * (count // max(len(pairs), 1) + 1))[:count]


def plain_transformers_scores(model, tokenizer, pairs, batch_size: int, prompt: str) -> list[float]:
    """The FlagLLMReranker prompt scored by hand: [BOS] "A: q" \\n "B: p" \\n prompt → "Yes" logit at the end."""
    yes = tokenizer("Yes", add_special_tokens=False)["input_ids"][0]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id not in (None, tokenizer.pad_token_id) else []

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    newline, prompt_ids = ids("\n"), ids(prompt)
    sequences = [bos + ids(f"A: {q}") + newline + ids(f"B: {p}") + newline + prompt_ids for q, p in pairs]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scores: list[float] = []
    with torch.inference_mode():
        for start in range(0, len(sequences), batch_size):
            chunk = sequences[start : start + batch_size]
            longest = max(map(len, chunk))
            input_ids = torch.tensor([s + [pad] * (longest - len(s)) for s in chunk])
            mask = torch.tensor([[1] * len(s) + [0] * (longest - len(s)) for s in chunk])
            logits = model(input_ids=input_ids, attention_mask=mask).logits
            last = mask.sum(dim=1) - 1
            scores += logits[torch.arange(len(chunk)), last, yes].float().tolist()
    return scores


def bench_rerank(report: Report, args, reranker) -> None:
    from flagdemo.models.rerankers.inputs import DEFAULT_PROMPT

    pairs = rerank_pairs(args.pairs)
    batch_size = 16
    outputs: dict[str, list[float]] = {}
    medians = alternate(
        {
            "flagdemo FlagLLMReranker": lambda: outputs.__setitem__(
                "flagdemo", reranker.compute_score(pairs, batch_size=batch_size)
            ),
            "plain transformers loop": lambda: outputs.__setitem__(
                "plain",
                plain_transformers_scores(reranker.model, reranker.tokenizer, pairs, batch_size, DEFAULT_PROMPT),
            ),
        },
        args.runs,
    )
    plain = medians["plain transformers loop"]
    for name, seconds in medians.items():
        report.add(
            "rerank",
            f"{name} ({len(pairs)} pairs, batch {batch_size})",
            f"{len(pairs) / seconds:.1f} pairs/s, {plain / seconds:.2f}x plain",
            seconds=seconds,
            pairs_per_second=len(pairs) / seconds,
        )
    difference = float(np.abs(np.array(outputs["flagdemo"]) - np.array(outputs["plain"])).max())
    report.add("rerank", "flagdemo vs plain max abs score diff", f"{difference:.2e}", max_abs_diff=difference)


def bench_sweep(report: Report, args, reranker) -> None:
    from flagdemo.models.rerankers import layer_sweep

    pairs = rerank_pairs(args.pairs)
    final = reranker.valid_layers[-1]
    medians = alternate(
        {
            "all layers": lambda: layer_sweep(reranker, pairs, batch_size=16),
            "final layer": lambda: layer_sweep(reranker, pairs, layers=[final], batch_size=16),
        },
        args.runs,
    )
    ratio = medians["all layers"] / medians["final layer"]
    report.add(
        "sweep",
        f"{len(reranker.valid_layers)} layers vs final only ({len(pairs)} pairs)",
        f"{medians['all layers']:.2f} s vs {medians['final layer']:.2f} s = {ratio:.2f}x",
        all_layers_seconds=medians["all layers"],
        final_layer_seconds=medians["final layer"],
        ratio=ratio,
    )


def bench_load(report: Report, args) -> None:
    from flagdemo.models.cache import MODEL_CACHE
    from flagdemo.models.rerankers import FlagLLMReranker
    from flagdemo.models.sources import smollm2_dir

    started = time.perf_counter()
    folder = smollm2_dir()
    report.add("load", "SmolLM2 conversion check / first conversion", f"{time.perf_counter() - started:.2f} s")
    seconds = []
    for _ in range(min(args.runs, 3)):
        MODEL_CACHE.clear()
        seconds.append(seconds_of(lambda: FlagLLMReranker(str(folder), use_fp16=False)))
    load = statistics.median(seconds)
    report.add("load", "SmolLM2 load after conversion (median)", f"{load:.2f} s", seconds=load)


def bench_cuda(report: Report, args) -> None:
    if not torch.cuda.is_available():
        report.skip("cuda", "no CUDA device on this machine")
        return
    from sentence_transformers import SentenceTransformer

    from flagdemo.models.embedders import FlagModel
    from flagdemo.models.sources import bundled_minilm_dir

    folder = str(bundled_minilm_dir())
    texts = mixed_texts(args.texts)
    for use_fp16 in (False, True):
        model = FlagModel(folder, pooling_method="mean", use_fp16=use_fp16, devices="cuda:0")
        reference = SentenceTransformer(folder, device="cuda:0")
        if use_fp16:
            reference.half()

        def synced(function: Callable[[], object]) -> Callable[[], None]:
            return lambda: (function(), torch.cuda.synchronize())

        medians = alternate(
            {
                "flagdemo": synced(lambda m=model: m.encode(texts, batch_size=128)),
                "sentence-transformers": synced(lambda r=reference: r.encode(texts, batch_size=128)),
            },
            args.runs,
        )
        label = "fp16" if use_fp16 else "fp32"
        ratio = medians["sentence-transformers"] / medians["flagdemo"]
        report.add(
            "cuda",
            f"{label} encode batch 128",
            f"{len(texts) / medians['flagdemo']:.0f} texts/s, {ratio:.2f}x ST",
            flagdemo_seconds=medians["flagdemo"],
            st_seconds=medians["sentence-transformers"],
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", default=platform.node() or "machine", help="name for the JSON file")
    parser.add_argument("--texts", type=int, default=2000, help="encode benchmark size (default 2000)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--pairs", type=int, default=64, help="reranking pairs (default 64)")
    parser.add_argument("--runs", type=int, default=5, help="runs per contender; the median is reported")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/<machine>.json)")
    from benchmarks.corpus_bench import add_arguments as add_corpus_arguments

    add_corpus_arguments(parser)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    out = args.out or RESULTS_DIR / f"{args.machine}.json"
    report = Report(args.machine, out)
    report.data["settings"] = {key: value for key, value in vars(args).items() if key != "out"}
    report.data["torch_threads"] = torch.get_num_threads()
    print(f"# flagdemo benchmarks on {args.machine}: {describe()}", flush=True)

    peak = None
    if "matmul" in args.sections:
        peak = matmul_peak(args.runs)
        report.add("matmul", "2048³ fp32 torch.matmul", f"{peak:.1f} GFLOP/s", gflops=peak)
    if {"encode", "agreement"} & set(args.sections):  # "agreement" alone: the fast modes' agreement, no timings
        bench_fast_mode_agreement(report)
    if "encode" in args.sections:
        bench_encode(report, args, peak)
    if "coldstart" in args.sections:
        bench_cold_start(report, args)
    if "cache" in args.sections:
        bench_cache(report, args)
    if "load" in args.sections:
        bench_load(report, args)
    if {"rerank", "sweep"} & set(args.sections):
        from flagdemo.models.rerankers import FlagLLMReranker
        from flagdemo.models.sources import smollm2_dir

        reranker = FlagLLMReranker(str(smollm2_dir()), use_fp16=False)
        if "rerank" in args.sections:
            bench_rerank(report, args, reranker)
        if "sweep" in args.sections:
            bench_sweep(report, args, reranker)
    if "cuda" in args.sections:
        bench_cuda(report, args)
    if "app" in args.sections:
        from benchmarks.app_bench import bench_app

        try:
            bench_app(report, args)
        except Exception as error:  # the engine figures above are still worth writing out
            report.add("app", "failed", f"{type(error).__name__}: {str(error).splitlines()[0][:100]}")

    if "statistics" in args.sections:  # the comparison's paired tests, 10 systems × 1,000 queries (compare_bench.py)
        from benchmarks.compare_bench import bench_statistics

        bench_statistics(report, args)

    if "corpus" in args.sections:  # embed local vs Ray, exact search vs the faiss index (benchmarks/corpus_bench.py)
        from benchmarks.corpus_bench import bench_corpus

        bench_corpus(report, args)

    print(report.table())
    report.write()
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
