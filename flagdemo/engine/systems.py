"""Systems named by one spec string, ``NAME=SPEC``, the same in the CLI, the API and the Compare tab.

Grammar (spaces around the operators are allowed)::

    SPEC     := FUSION | PIPELINE | BASE
    BASE     := 'bm25' ['[k1=X,b=Y]']              BM25 through bm25s (models/lexical.py)
              | MODEL ['@' LAYER] ['[' OPTION ']'] an embedder, at a layer (0 = embedding output; default the last)
    OPTION   := dense | sparse | colbert | m3 | m3=WD:WS:WC   BGE-M3's modes (M3 models only); m3 = FlagEmbedding's
                                                    weighted sum with weights 0.4:0.2:0.4 unless given
              | task=TASK                           LLM-Embedder's task
    PIPELINE := FIRST '>>' RERANKER ['[layer=N]'] '@' DEPTH   rerank FIRST's top DEPTH (layer: the cutoff layer of
                                                    a layer-wise reranker, or the logit lens of an LLM reranker)
    FUSION   := ('rrf' | 'combsum' | 'combmnz') '(' ARG ',' ARG {',' ARG} {',' KEY '=' VALUE} ')'
                                                    k=60 for RRF; norm=min-max (default) | zmuv | max | sum | rank
                                                    | borda for CombSUM / CombMNZ
    FIRST, ARG := the NAME of another system of the same call, or a SPEC written inline

Parsing gives a ``System`` tree with names resolved to the systems they refer to; models are checked for their
role (an embedder, a reranker, an M3 model) by ``check_models`` before anything runs, so a bad spec is a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from flagdemo.analysis.fusion import METHODS as FUSIONS
from flagdemo.analysis.fusion import NORMS, RRF_K
from flagdemo.errors import InvalidInputError

M3_MODES = ("dense", "sparse", "colbert", "m3")
M3_WEIGHTS = (0.4, 0.2, 0.4)  # FlagEmbedding's weights_for_different_modes in its examples
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_OPTIONS = re.compile(r"^(?P<body>.*?)\[(?P<options>[^\[\]]*)\]$")
_FUSION = re.compile(r"^(?P<method>[A-Za-z]+)\((?P<args>.*)\)$", re.S)


@dataclass(frozen=True)
class System:
    """One parsed system: ``kind`` is 'embedder', 'm3', 'bm25', 'pipeline' or 'fusion'."""

    kind: str
    model: str = ""
    layer: int | None = None
    task: str | None = None
    mode: str = ""
    weights: tuple[float, ...] = ()
    k1: float = 1.5
    b: float = 0.75
    reranker: str = ""
    depth: int = 0
    members: tuple[System, ...] = field(default=())
    method: str = ""
    k: int = RRF_K
    norm: str | None = None
    text: str = ""

    @property
    def first(self) -> System:
        return self.members[0]

    def describe(self) -> str:
        """The system in words, for tables."""
        if self.kind == "bm25":
            return f"BM25 (bm25s lucene, k1={self.k1:g}, b={self.b:g})"
        if self.kind == "embedder":
            where = "last layer" if self.layer is None else f"layer {self.layer}"
            return f"{self.model} @ {where}" + (f" (task {self.task})" if self.task else "")
        if self.kind == "m3":
            extra = f" {':'.join(f'{w:g}' for w in self.weights)}" if self.mode == "m3" else ""
            return f"{self.model} {self.mode}{extra}"
        if self.kind == "pipeline":
            cut = f" at layer {self.layer}" if self.layer is not None else ""
            return f"{self.first.describe()} >> {self.reranker}{cut} (top {self.depth})"
        setting = f"k={self.k}" if self.method == "rrf" else f"norm={self.norm or 'min-max'}"
        return f"{self.method}({', '.join(m.describe() for m in self.members)}; {setting})"

    def models(self) -> list[tuple[str, str]]:
        """(model, role) of every model this system runs, its members' included."""
        own = []
        if self.kind in ("embedder", "m3"):
            own = [(self.model, "embedder")]
        elif self.kind == "pipeline":
            own = [(self.reranker, "reranker")]
        return own + [pair for member in self.members for pair in member.models()]


def parse_assignment(text: str) -> tuple[str, str]:
    """``NAME=SPEC`` → (name, spec); a sentence when it is not that."""
    if not isinstance(text, str) or "=" not in text:
        raise InvalidInputError(f"Write a system as NAME=SPEC (e.g. minilm=all-MiniLM-L6-v2), not {str(text)[:60]!r}.")
    name, spec = (part.strip() for part in text.split("=", 1))
    if not _NAME.match(name):
        raise InvalidInputError(
            f"The system name {name[:60]!r} must be 1 to 40 letters, digits, '_', '-' or '.' (it names a run file)."
        )
    if not spec:
        raise InvalidInputError(f"The system {name} has an empty spec; write {name}=SPEC.")
    return name, spec


def parse_systems(assignments: Sequence[str] | Mapping[str, str]) -> dict[str, System]:
    """Every ``NAME=SPEC`` parsed, references to other names resolved (a cycle or an unknown name is a sentence)."""
    if isinstance(assignments, Mapping):
        items = list(assignments.items())
    else:
        items = [parse_assignment(a) for a in assignments]
    specs: dict[str, str] = {}
    for name, spec in items:
        if name in specs:
            raise InvalidInputError(f"The system name {name} is given twice; each system needs its own name.")
        specs[name] = str(spec).strip()
    if not specs:
        raise InvalidInputError("Name at least one system, e.g. --system minilm=all-MiniLM-L6-v2.")
    parsed: dict[str, System] = {}
    for name in specs:
        parsed[name] = _parse_named(name, specs, parsed, ())
    return parsed


def _parse_named(name: str, specs: Mapping[str, str], parsed: dict[str, System], chain: tuple[str, ...]) -> System:
    if name in chain:
        raise InvalidInputError(f"The systems refer to each other in a cycle: {' → '.join([*chain, name])}.")
    if name not in parsed:
        parsed[name] = _parse_spec(specs[name], specs, parsed, (*chain, name))
    return parsed[name]


def _parse_spec(spec: str, specs: Mapping[str, str], parsed: dict[str, System], chain: tuple[str, ...]) -> System:
    spec = spec.strip()
    where = f" (in {chain[-1]}={specs.get(chain[-1], spec)})" if chain else ""
    if not spec:
        raise InvalidInputError(f"An empty spec{where}.")
    fusion = _FUSION.match(spec)
    if fusion is not None and ">>" not in _outside_brackets(spec):
        return _parse_fusion(fusion.group("method").lower(), fusion.group("args"), specs, parsed, chain, where=where)
    if ">>" in _outside_brackets(spec):
        first_text, _, second = spec.rpartition(">>")
        first = _reference(first_text, specs, parsed, chain)
        return _parse_pipeline(first, second.strip(), spec, where)
    return _parse_base(spec, where)


def _outside_brackets(spec: str) -> str:
    """The spec with everything inside (...) and [...] blanked, to find its top-level operators."""
    depth, out = 0, []
    for char in spec:
        depth += char in "(["
        out.append(char if depth == 0 else " ")
        depth -= char in ")]"
    return "".join(out)


def _reference(text: str, specs: Mapping[str, str], parsed: dict[str, System], chain: tuple[str, ...]) -> System:
    text = text.strip()
    if text in specs:
        return _parse_named(text, specs, parsed, chain)
    return _parse_spec(text, specs, parsed, chain)


def _split_args(args: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in args:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


def _parse_fusion(method, args, specs, parsed, chain, *, where) -> System:
    if method not in ("rrf", "combsum", "combmnz"):
        raise InvalidInputError(f"Unknown fusion {method!r}{where}: use rrf(a,b), combsum(a,b) or combmnz(a,b).")
    members, k, norm = [], RRF_K, None
    for part in _split_args(args):
        key, eq, value = part.partition("=")
        if eq and key.strip() in ("k", "norm") and "(" not in key:
            if key.strip() == "k":
                if method != "rrf":
                    raise InvalidInputError(f"k is RRF's constant; {method} takes norm=…{where}.")
                k = _whole(value, "RRF's k", where)
            else:
                if method == "rrf":
                    raise InvalidInputError(f"RRF reads ranks, so it takes no normalisation{where}.")
                norm = value.strip()
                if norm not in NORMS:
                    choices = ", ".join(NORMS)
                    raise InvalidInputError(f"Unknown normalisation {norm!r}{where}: choose one of {choices}.")
            continue
        if not part:
            raise InvalidInputError(f"An empty member in {method}(…){where}.")
        members.append(_reference(part, specs, parsed, chain))
    if len(members) < 2:
        raise InvalidInputError(f"{method}(…) fuses at least two systems{where}.")
    assert method in FUSIONS
    return System("fusion", members=tuple(members), method=method, k=k, norm=norm)


def _parse_pipeline(first: System, second: str, spec: str, where: str) -> System:
    reranker, at, depth_text = second.rpartition("@")
    if not at or not reranker.strip():
        raise InvalidInputError(
            f"A pipeline reads FIRST>>RERANKER@DEPTH (e.g. minilm>>SmolLM2-135M-Instruct@20); {spec!r} has no "
            f"@DEPTH{where}."
        )
    depth = _whole(depth_text, "The reranking depth", where)
    layer = None
    options = _OPTIONS.match(reranker.strip())
    if options is not None:
        reranker = options.group("body")
        key, eq, value = options.group("options").partition("=")
        if key.strip() != "layer" or not eq:
            raise InvalidInputError(f"A reranker takes one option, [layer=N] (its cutoff layer){where}.")
        layer = _whole(value, "The cutoff layer", where, minimum=0)
    return System("pipeline", members=(first,), reranker=reranker.strip(), depth=depth, layer=layer)


def _parse_base(spec: str, where: str) -> System:
    options = _OPTIONS.match(spec)
    body, option = (options.group("body").strip(), options.group("options").strip()) if options else (spec, "")
    if body.lower() == "bm25":
        settings = {"k1": 1.5, "b": 0.75}
        for part in filter(None, (p.strip() for p in option.split(","))):
            key, eq, value = part.partition("=")
            if key.strip() not in settings or not eq:
                raise InvalidInputError(f"BM25 takes [k1=X,b=Y], not [{option}]{where}.")
            try:
                settings[key.strip()] = float(value)
            except ValueError:
                raise InvalidInputError(f"BM25's {key.strip()} must be a number, not {value!r}{where}.") from None
        return System("bm25", k1=settings["k1"], b=settings["b"])
    model, layer = body, None
    if "@" in body:
        model, _, layer_text = body.rpartition("@")
        layer = _whole(layer_text, "The layer", where, minimum=0)
    if not model.strip():
        raise InvalidInputError(f"No model named in {spec!r}{where}.")
    model = model.strip()
    if not option:
        return System("embedder", model=model, layer=layer)
    key, eq, value = option.partition("=")
    key = key.strip()
    if key == "task" and eq:
        return System("embedder", model=model, layer=layer, task=value.strip())
    if key in M3_MODES and (not eq or key == "m3"):
        if layer is not None:
            raise InvalidInputError(f"BGE-M3's modes are read at its last layer; drop @{layer} from {spec!r}{where}.")
        weights = M3_WEIGHTS if key == "m3" else ()
        if eq:
            try:
                weights = tuple(float(w) for w in value.split(":"))
            except ValueError:
                weights = ()
            if len(weights) != 3 or min(weights) < 0 or sum(weights) <= 0:
                raise InvalidInputError(
                    f"m3=WD:WS:WC takes three weights ≥ 0, not all 0 (dense, sparse, ColBERT){where}."
                )
        return System("m3", model=model, mode=key, weights=weights)
    raise InvalidInputError(
        f"Unknown option [{option}] in {spec!r}{where}: an embedder takes [task=…], a BGE-M3 model [dense], "
        "[sparse], [colbert] or [m3]."
    )


def _whole(text: str, what: str, where: str, minimum: int = 1) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise InvalidInputError(f"{what} must be a whole number, not {str(text).strip()[:20]!r}{where}.") from None
    if value < minimum:
        raise InvalidInputError(f"{what} must be at least {minimum}, not {value}{where}.")
    return value
