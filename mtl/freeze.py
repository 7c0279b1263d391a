"""Freezing by name. Components: `embeddings`, `layer.0` ... `layer.N-1`, `encoder.other` (e.g. a
final norm), `pooler` and `head.<task>`. Presets cover the questions practitioners ask.

BERT's `pooler` (a dense layer over [CLS], trained for next-sentence prediction) is never used by
sentence-transformers pooling, so it is always frozen and never counted as trainable."""

import re
from collections import OrderedDict

from .config import FREEZE_PRESETS
from .errors import ConfigError

# The one list of freeze presets (spec -> what it freezes), kept with the other choices in config.py;
# `presets(model)` spells out bottom:K and head.<task> for one model.
PRESETS = FREEZE_PRESETS
_LAYER = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def encoder_component(param_name: str) -> str:
    """Which component a parameter of the Hugging Face model belongs to."""
    m = _LAYER.search(param_name)
    if m:
        return f"layer.{int(m.group(1))}"
    if "embed" in param_name:
        return "embeddings"
    if param_name.startswith("pooler."):
        return "pooler"
    return "encoder.other"


def component_params(model) -> "OrderedDict[str, list]":
    """{component: [(name, parameter), ...]} in network order: embeddings, layers, other, heads."""
    from .encoder import hf_model

    groups = OrderedDict()
    for name, p in hf_model(model.encoder).named_parameters():
        groups.setdefault(encoder_component(name), []).append((name, p))
    layers = sorted((c for c in groups if c.startswith("layer.")), key=lambda c: int(c.split(".")[1]))
    order = ["embeddings", *layers, "encoder.other", "pooler"]
    order = [c for c in order if c in groups]
    out = OrderedDict((c, groups[c]) for c in order)
    for task, head in model.heads.items():
        out[f"head.{task}"] = list(head.named_parameters())
    return out


def num_layers(model) -> int:
    return sum(1 for c in component_params(model) if c.startswith("layer."))


def freezable_components(model) -> list[str]:
    """Components in network order, without BERT's unused pooler (always frozen)."""
    return [c for c in component_params(model) if c != "pooler"]


def presets(model) -> "OrderedDict[str, str]":
    """PRESETS spelled out for one model: bottom:0 ... bottom:N and head.<task> for each of its heads."""
    out = OrderedDict()
    for spec, description in PRESETS.items():
        if spec == "bottom:K":
            for k in range(num_layers(model) + 1):
                out[f"bottom:{k}"] = description.replace("bottom K", f"bottom {k}")
        elif spec == "head.<task>":
            for task in model.heads:
                out[f"head.{task}"] = description.replace("<task>", task)
        else:
            out[spec] = description
    return out


def frozen_components(spec: str, model) -> list[str]:
    """parse_freeze in network order."""
    frozen = parse_freeze(spec, model)
    return [c for c in component_params(model) if c in frozen]


def preset_for(frozen, model) -> str | None:
    """The preset of `presets(model)` that freezes exactly `frozen` (the first, least frozen, where two
    coincide, e.g. backbone and bottom:N on BERT), else None."""
    frozen = set(frozen or ())
    return next((spec for spec in presets(model) if parse_freeze(spec, model) == frozen), None)


def parse_freeze(spec: str, model) -> set[str]:
    """A preset or a comma-separated list of components -> the set of frozen components."""
    components = list(component_params(model))
    encoder_parts = [c for c in components if not c.startswith("head.")]
    spec = (spec or "none").strip()
    if spec == "none":
        return set()
    if spec == "all":
        return set(components) - {"pooler"}
    if spec in ("backbone", "encoder"):
        return set(encoder_parts) - {"pooler"}
    if spec.startswith("bottom:"):
        n = num_layers(model)
        try:
            k = int(spec.split(":", 1)[1])
        except ValueError:
            k = -1
        if not 0 <= k <= n:
            raise ConfigError(f"bottom:K needs 0 <= K <= {n} (the number of layers); got {spec!r}")
        return {"embeddings"} | {f"layer.{i}" for i in range(k)}
    frozen = {part.strip() for part in spec.split(",") if part.strip()}
    unknown = sorted(frozen - set(components))
    if unknown:
        raise ConfigError(
            f"unknown freeze component(s) {', '.join(unknown)}; presets are {', '.join(PRESETS)} "
            f"and components are {', '.join(components)}"
        )
    return frozen


def apply_freeze(model, frozen: set[str]) -> None:
    """Set requires_grad on every parameter; the optimizer will only see trainable ones."""
    for component, params in component_params(model).items():
        for _, p in params:
            p.requires_grad_(component not in frozen and component != "pooler")


def parameter_counts(model) -> "OrderedDict[str, dict]":
    """{component: {"total": n, "trainable": n}} plus a "total" row."""
    rows = OrderedDict()
    for component, params in component_params(model).items():
        rows[component] = {
            "total": sum(p.numel() for _, p in params),
            "trainable": sum(p.numel() for _, p in params if p.requires_grad),
        }
    rows["total"] = {k: sum(r[k] for r in rows.values()) for k in ("total", "trainable")}
    return rows


def count_trainable(model, frozen: set[str]) -> int:
    """Trainable parameters if `frozen` were applied, without touching the model."""
    return sum(
        p.numel() for c, ps in component_params(model).items() if c not in frozen and c != "pooler" for _, p in ps
    )
