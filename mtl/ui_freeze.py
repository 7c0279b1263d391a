"""Freezing in the app: presets (none, all, backbone, one head, bottom K layers) kept in sync with
one checkbox per component, and a plain-words summary of what a choice trains."""

from .freeze import component_params, count_trainable, parameter_counts
from .ui import AppContext, UIError


def fmt_params(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else (f"{n / 1e3:.1f}k" if n >= 1e3 else str(n))


def components(ctx: AppContext) -> list[str]:
    """Freezable components in network order (BERT's unused pooler is always frozen, so not listed)."""
    return [c for c in component_params(ctx.default_model) if c != "pooler"]


def component_choices(ctx: AppContext) -> list[tuple[str, str]]:
    counts = parameter_counts(ctx.default_model)
    return [(f"{c} · {fmt_params(counts[c]['total'])}", c) for c in components(ctx)]


def preset_choices(ctx: AppContext) -> list[tuple[str, str]]:
    heads = [(f"{c}: freeze the {c[5:]} head", c) for c in components(ctx) if c.startswith("head.")]
    return [
        ("none: train everything", "none"),
        ("backbone: heads only", "backbone"),
        ("bottom:K: embeddings + the bottom K layers", "bottom"),
        *heads,
        ("all: freeze everything", "all"),
        ("custom (set below)", "custom"),
    ]


def num_layers(ctx: AppContext) -> int:
    return sum(1 for c in components(ctx) if c.startswith("layer."))


def frozen_for_preset(ctx: AppContext, preset: str, k=2) -> list[str] | None:
    """The frozen components of a preset, in network order; None for "custom" (keep the boxes)."""
    comps = components(ctx)
    if preset == "none":
        return []
    if preset == "all":
        return comps
    if preset == "backbone":
        return [c for c in comps if not c.startswith("head.")]
    if preset == "bottom":
        k = int(k or 0)
        if not 0 <= k <= num_layers(ctx):
            raise UIError(f"K must be between 0 and {num_layers(ctx)}.")
        return ["embeddings"] + [f"layer.{i}" for i in range(k)]
    if preset in comps and preset.startswith("head."):
        return [preset]
    if preset == "custom":
        return None
    raise UIError(f"Unknown freeze preset {preset!r}.")


def preset_for_frozen(ctx: AppContext, frozen) -> tuple[str, int | None]:
    """The preset (and K for bottom:K) that freezes exactly `frozen`, else ("custom", None)."""
    frozen = set(frozen or [])
    for preset in ("none", "all", "backbone"):
        if frozen == set(frozen_for_preset(ctx, preset)):
            return preset, None
    for k in range(num_layers(ctx) + 1):
        if frozen == set(frozen_for_preset(ctx, "bottom", k)):
            return "bottom", k
    if len(frozen) == 1 and next(iter(frozen)).startswith("head."):
        return next(iter(frozen)), None
    return "custom", None


def check_frozen(ctx: AppContext, frozen) -> list[str]:
    comps = components(ctx)
    unknown = sorted(set(frozen or []) - set(comps))
    if unknown:
        raise UIError(f"Unknown component(s): {', '.join(unknown)}. Components are {', '.join(comps)}.")
    return [c for c in comps if c in set(frozen or [])]


def encoder_frozen(ctx: AppContext, frozen) -> bool:
    """Every encoder component frozen: only heads train, on cached sentence embeddings."""
    return all(c in frozen for c in components(ctx) if not c.startswith("head."))


def trainable_summary(ctx: AppContext, frozen, start: str = "pretrained") -> str:
    """Markdown: how many parameters would train, and what this choice means."""
    frozen = check_frozen(ctx, frozen)
    model = ctx.default_model
    n, total = count_trainable(model, set(frozen)), count_trainable(model, set())
    share = n / total
    pct = f"{share:.1%}" if share >= 0.01 or share == 0 else f"{share:.2%}"
    head = f"**Trainable: {n:,} of {total:,} parameters ({pct})**"
    preset, k = preset_for_frozen(ctx, frozen)
    layers = num_layers(ctx)
    if preset == "all":
        return (
            f"{head}  \n❄ **Everything is frozen, so nothing can learn.** Start will not run a training loop: "
            "it only measures the starting model on the validation set. Unfreeze at least one component to train."
        )
    text = {
        "none": "Every layer adapts to the tasks: usually the most accurate, and the slowest.",
        "backbone": "Only the heads learn. Fast and small to save; the sentence embeddings stay as they are. "
        "Heads alone learn slowly, but each epoch takes well under a second (the encoder's output is cached): "
        "use the most epochs you can (Experiments, Freeze scenarios: 3 epochs against 30).",
        "bottom": f"The embeddings and the bottom {k} layer(s) keep their weights; the top {layers - (k or 0)} "
        "layer(s) and the heads adapt. Lower layers hold general language knowledge.",
    }.get(preset, "")
    frozen_heads = [c for c in frozen if c.startswith("head.")]
    if frozen_heads and start == "pretrained":
        if encoder_frozen(ctx, frozen):
            heads = ", ".join(frozen_heads)
            text += f" ⚠ A new head starts random: with the encoder frozen too, {heads} stays at chance."
        else:
            text += (
                f" A new head starts random, but its task still learns: the encoder under the frozen "
                f"{', '.join(frozen_heads)} adapts to it, at some cost to every task (Experiments, Freeze scenarios). "
                "Freeze a head to keep a trained one fixed while you keep training the active model."
            )
    elif preset.startswith("head."):
        text = f"{preset} is kept fixed while the encoder and the other head(s) adapt."
    elif preset == "custom":
        text = f"Frozen: {', '.join(frozen)}."
    return f"{head}  \n{text}".strip()


def preset_changed(ctx, preset, k, frozen, start):
    """(frozen components, show the K slider, summary) after the user picks a preset or moves K."""
    new = frozen_for_preset(ctx, preset, k)
    new = check_frozen(ctx, frozen) if new is None else new
    return new, preset == "bottom", trainable_summary(ctx, new, start)


def frozen_changed(ctx, frozen, start):
    """(preset, K, show the K slider, summary) after the user ticks a component box."""
    frozen = check_frozen(ctx, frozen)
    preset, k = preset_for_frozen(ctx, frozen)
    return preset, k, preset == "bottom", trainable_summary(ctx, frozen, start)
