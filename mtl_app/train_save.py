"""Saving a session's trained model under a name a visitor chose: the name checked (one folder inside
the model folder, never a link, never over another model), the save atomic; a quota per session (so no
visitor fills the app's cap for everyone) and deleting one's own models."""

import os
import shutil
import uuid

from mtl.checkpoint import round_weights, save_checkpoint
from mtl.io import atomic_directory

from .context import DEFAULT_MODEL, NAME_RE, ROOT, AppContext, Session, UIError, md_escape
from .inputs import expect

NAME_RULE = "Names use letters, digits, '-' and '_' (up to 64, starting with a letter or digit)"
SAVE_DTYPE = "float16"  # the trained encoder weights at half the size; the heads are stored in full either way
# names a saved model may not take: the shipped model, and device names Windows cannot create as folders
RESERVED_NAMES = {DEFAULT_MODEL, "con", "prn", "aux", "nul", *(f"{d}{i}" for d in ("com", "lpt") for i in range(10))}


def validate_name(ctx: AppContext, name) -> str:
    """The name, stripped, if a new model may be saved under it; else a UIError saying why not."""
    name = (expect(name, "text", "The model name", optional=True) or "").strip()
    if not name:
        raise UIError("Give the model a name first.")
    if len(name) > 64:
        raise UIError(f"That name has {len(name):,} characters, over the limit of 64. {NAME_RULE}.")
    if "/" in name or "\\" in name or name.startswith("."):
        raise UIError(
            f"A name cannot contain '/' or '\\' or start with '.': a model is one folder inside the model "
            f"folder, never elsewhere. {NAME_RULE}."
        )
    if not NAME_RE.match(name):
        raise UIError(f"{NAME_RULE}: no spaces, dots or slashes.")
    if name.lower() == DEFAULT_MODEL:
        raise UIError("'default' is the shipped model and cannot be replaced; choose another name.")
    if name.lower() in RESERVED_NAMES:
        raise UIError(f"{name!r} is a reserved name (a device name on Windows); choose another name.")
    target = ctx.saved_dir / name
    if target.is_symlink():
        raise UIError(
            f"A link named {name!r} already exists in the model folder; links are never followed or saved "
            "over. Choose another name."
        )
    if target.exists() or name.lower() in {n.lower() for n in ctx.saved_models()}:
        raise UIError(f"A model named {name!r} already exists; choose another name.")
    if target.resolve().parent != ctx.saved_dir.resolve():
        raise UIError("That name points outside the model folder.")
    return name


def save_session_model(ctx: AppContext, session: Session, name) -> str:
    """Save this session's trained model as saved_dir/<name> (trained encoder weights as float16); returns
    the name.

    mtl.io.atomic_directory writes the checkpoint into a new, hidden folder beside the name and renames it
    in one step: the model appears complete or not at all, a crash leaves only a `.saving-*` folder
    (removed by a later save), and a link or folder that appears under the name in the meantime makes the
    rename fail instead of being followed or overwritten. The session's model is rounded to float16 first,
    so it goes on predicting exactly as the saved one does."""
    if session.model is None or session.run is None:
        if session.released:
            raise UIError("Your trained model was released to free memory before it was saved; train it again.")
        raise UIError("There is no trained model in this session yet: train one first.")
    if session.running:
        raise UIError("Wait for the training run to end before saving.")
    with ctx.save_lock:
        name = validate_name(ctx, name)
        check_quota(ctx, session)
        run = session.run
        metrics = {"validation": run["metrics"]} if run["metrics"] else {}
        target = ctx.saved_dir / name
        try:
            with atomic_directory(target, replace=False) as tmp, ctx.model_lock(session.model):
                round_weights(session.model, SAVE_DTYPE)
                save_checkpoint(session.model, tmp, run["config"], run["frozen"], metrics, dtype=SAVE_DTYPE)
        except OSError:
            if not (target.exists() or target.is_symlink()):
                raise  # the write itself failed
            raise UIError(f"A model named {name!r} appeared while saving; choose another name.") from None
        ctx.note_saved(session, name)
    return name


def check_quota(ctx: AppContext, session: Session) -> None:
    """A UIError when this session has saved its share of models, or the app holds its most. Every save
    counts, the same model under another name too; deleting one gives the place back."""
    mine = [n for n in session.saved if (ctx.saved_dir / n).is_dir()]
    quota = ctx.limits.session_saved_models
    if len(mine) >= quota:
        raise UIError(
            f"This session already keeps {quota} saved models, the most one session may keep here; "
            "delete one of yours to save another."
        )
    if len(ctx.saved_models()) >= ctx.limits.saved_models:
        raise UIError(
            f"This app already holds {ctx.limits.saved_models} saved models, its limit; delete one of yours "
            "to save another."
        )


def delete_saved_model(ctx: AppContext, session: Session, name) -> str:
    """Delete a model this session saved; returns its name. Another session's model, the shipped model
    or a name that is no saved model is refused. The folder is first renamed to a hidden one (gone from
    the list at once, so nobody loads half a model), then removed."""
    name = (expect(name, "text", "The model to delete", optional=True) or "").strip()
    if not name:
        raise UIError("Choose one of the models this session saved.")
    with ctx.save_lock:
        if name not in session.saved:
            raise UIError(
                f"{name!r} was not saved in this session: you can delete only the models you saved here "
                "(in this browser tab)."
            )
        target = ctx.saved_dir / name
        if target.is_symlink() or not target.is_dir() or target.resolve().parent != ctx.saved_dir.resolve():
            ctx.forget_saved(session, name)
            raise UIError(f"There is no saved model named {name!r} any more.")
        doomed = ctx.saved_dir / f".deleting-{uuid.uuid4().hex}"
        os.rename(target, doomed)
        ctx.forget_saved(session, name)
    shutil.rmtree(doomed, ignore_errors=True)
    return name


def saved_message(ctx: AppContext, name: str) -> str:
    """What the Train tab says after a save: where the model is and how to use it outside the app."""
    where = os.path.relpath(ctx.saved_dir / name, ROOT)
    return (
        f"✓ Saved as **{md_escape(name)}**. It is listed in the model picker (for everyone using this app) and "
        f"loads with `python -m mtl predict --checkpoint {where}`."
    )
