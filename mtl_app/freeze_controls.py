"""The Train tab's freezing controls: a preset (none, all, backbone, one head, bottom K layers) kept
in sync with one checkbox per component, and a plain-words summary of what a choice trains. The
presets and what each freezes come from the library (mtl.freeze)."""

import gradio as gr

from mtl.freeze import (
    PRESETS,
    count_trainable,
    freezable_components,
    frozen_components,
    parameter_counts,
    preset_for,
    presets,
)

from .context import AppContext, UIError
from .handlers import shows_errors
from .inputs import expect


def format_params(n: int) -> str:
    """A parameter count in words: 1.8M, 4.2k, 384."""
    return f"{n / 1e6:.1f}M" if n >= 1e6 else (f"{n / 1e3:.1f}k" if n >= 1e3 else str(n))


def components(ctx: AppContext) -> list[str]:
    """Freezable components in network order (BERT's unused pooler is always frozen, so not listed)."""
    return freezable_components(ctx.default_model)


def component_choices(ctx: AppContext) -> list[tuple[str, str]]:
    counts = parameter_counts(ctx.default_model)
    return [(f"{c} · {format_params(counts[c]['total'])}", c) for c in components(ctx)]


def preset_choices(ctx: AppContext) -> list[tuple[str, str]]:
    """(label, value) pairs for the preset menu: mtl.freeze.PRESETS, one entry per head, K on its own
    slider (value "bottom"), and "custom" for any other set of ticks."""
    choices = []
    for spec, description in PRESETS.items():
        if spec == "head.<task>":
            heads = presets(ctx.default_model).items()
            choices += [(f"{head}: {what}", head) for head, what in heads if head.startswith("head.")]
        else:
            choices.append((f"{spec}: {description}", "bottom" if spec == "bottom:K" else spec))
    return choices + [("custom (set below)", "custom")]


def num_layers(ctx: AppContext) -> int:
    return sum(1 for c in components(ctx) if c.startswith("layer."))


def frozen_for_preset(ctx: AppContext, preset: str, k=2) -> list[str] | None:
    """The frozen components of a preset, in network order; None for "custom" (keep the boxes)."""
    preset = expect(preset, "text", "The freeze preset")
    if preset == "custom":
        return None
    if preset == "bottom":
        k = expect(k, "whole number", "K", optional=True) or 0
        if not 0 <= k <= num_layers(ctx):
            raise UIError(f"K must be between 0 and {num_layers(ctx)}.")
        preset = f"bottom:{k}"
    elif preset not in presets(ctx.default_model):
        raise UIError(f"Unknown freeze preset {preset!r}.")
    return frozen_components(preset, ctx.default_model)


def preset_for_frozen(ctx: AppContext, frozen) -> tuple[str, int | None]:
    """The preset (and K for bottom:K) that freezes exactly `frozen`, else ("custom", None)."""
    spec = preset_for(frozen, ctx.default_model)
    if spec is None:
        return "custom", None
    if spec.startswith("bottom:"):
        return "bottom", int(spec.split(":")[1])
    return spec, None


def check_frozen(ctx: AppContext, frozen) -> list[str]:
    """The ticked components in network order; UIError naming any the model does not have."""
    frozen = expect(frozen, "list of text", "The frozen components", optional=True)
    comps = components(ctx)
    unknown = sorted(set(frozen or []) - set(comps))
    if unknown:
        raise UIError(f"Unknown component(s): {', '.join(unknown)}. Components are {', '.join(comps)}.")
    return [c for c in comps if c in set(frozen or [])]


def encoder_frozen(ctx: AppContext, frozen) -> bool:
    """Every encoder component frozen: only heads train, on cached sentence embeddings."""
    return all(c in frozen for c in components(ctx) if not c.startswith("head."))


def _what_it_trains(ctx: AppContext, frozen: list[str], start: str) -> str:
    """The plain-words half of trainable_summary."""
    preset, k = preset_for_frozen(ctx, frozen)
    text = {
        "none": "Every layer adapts to the tasks: usually the most accurate, and the slowest.",
        "backbone": "Only the heads learn. Fast and small to save; the sentence embeddings stay as they are. "
        "Heads alone learn slowly, but each epoch takes well under a second (the encoder's output is cached): "
        "use the most epochs you can (Experiments, Freeze scenarios: 3 epochs against 30).",
        "bottom": f"The embeddings and the bottom {k} layer(s) keep their weights; the top "
        f"{num_layers(ctx) - (k or 0)} layer(s) and the heads adapt. Lower layers hold general language knowledge.",
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
    return text


def trainable_summary(ctx: AppContext, frozen, start: str = "pretrained") -> str:
    """Markdown: how many parameters would train, and what this choice means."""
    frozen = check_frozen(ctx, frozen)
    model = ctx.default_model
    n, total = count_trainable(model, set(frozen)), count_trainable(model, set())
    share = n / total
    pct = f"{share:.1%}" if share >= 0.01 or share == 0 else f"{share:.2%}"
    head = f"**Trainable: {n:,} of {total:,} parameters ({pct})**"
    if preset_for_frozen(ctx, frozen)[0] == "all":
        return (
            f"{head}  \n❄ **Everything is frozen, so nothing can learn.** Start will not run a training loop: "
            "it only measures the starting model on the validation set. Unfreeze at least one component to train."
        )
    return f"{head}  \n{_what_it_trains(ctx, frozen, start)}".strip()


def preset_changed(ctx: AppContext, preset, k, frozen, start):
    """(frozen components, show the K slider, summary) after the user picks a preset or moves K."""
    start = expect(start, "text", "Start from", optional=True) or "pretrained"
    new = frozen_for_preset(ctx, preset, k)
    new = check_frozen(ctx, frozen) if new is None else new
    return new, preset == "bottom", trainable_summary(ctx, new, start)


def frozen_changed(ctx: AppContext, frozen, start):
    """(preset, K, show the K slider, summary) after the user ticks a component box."""
    start = expect(start, "text", "Start from", optional=True) or "pretrained"
    frozen = check_frozen(ctx, frozen)
    preset, k = preset_for_frozen(ctx, frozen)
    return preset, k, preset == "bottom", trainable_summary(ctx, frozen, start)


def build_controls(ctx: AppContext, start: gr.Radio) -> gr.CheckboxGroup:
    """Lay out the preset, K, the component boxes and the summary, and wire them to each other and to
    the start point; returns the boxes (the Train form's frozen components)."""
    default_k = max(0, num_layers(ctx) - 2)  # bottom:4 on MiniLM: the top 2 layers and the heads train
    default_frozen = frozen_for_preset(ctx, "bottom", default_k)
    preset = gr.Dropdown(preset_choices(ctx), value="bottom", label="Freeze preset")
    k_slider = gr.Slider(0, num_layers(ctx), value=default_k, step=1, label="K: layers frozen from the bottom")
    frozen = gr.CheckboxGroup(
        component_choices(ctx),
        value=default_frozen,
        label="Frozen components (ticked = frozen)",
        info="network order, bottom to top; the preset follows your ticks",
        elem_id="frozen-components",
    )
    summary = gr.Markdown(trainable_summary(ctx, default_frozen), container=True)

    @shows_errors(outputs=3)
    def preset_input(preset, k, frozen, start):
        frozen, show_k, summary = preset_changed(ctx, preset, k, frozen, start)
        return frozen, gr.update(visible=show_k), summary

    @shows_errors(outputs=3)
    def frozen_input(frozen, start):
        preset, k, show_k, summary = frozen_changed(ctx, frozen, start)
        k_update = gr.update(visible=show_k) if k is None else gr.update(visible=show_k, value=k)
        return preset, k_update, summary

    from_preset = [preset, k_slider, frozen, start], [frozen, k_slider, summary]
    preset.input(preset_input, *from_preset, api_name="freeze_preset")
    k_slider.input(preset_input, *from_preset, api_name="freeze_k")
    from_boxes = [frozen, start], [preset, k_slider, summary]
    frozen.input(frozen_input, *from_boxes, api_name="freeze_components")
    start.input(frozen_input, *from_boxes, api_name="start_point")
    return frozen
