"""One optimisation step of the training loop (mtl/train.py), and the losses it reports.

Reading a loss (`.item()`) makes the host wait for the device. On a GPU that wait, every step, is
where the accelerator idles: the next batch is only prepared once the last one is done. So losses
are summed on the device and read every `log_every` steps (TrainConfig.log_every; 1 = every step, as
on a CPU, where it costs nothing). A non-finite loss is caught before the update when losses are read
every step; otherwise at the next report, and the loop rolls back to its last verified copy of the
weights (train.py keeps one, taken only at a report that found every loss finite).
"""

import math
import time

import torch

from .encoder import hf_model
from .freeze import component_params, encoder_component


def set_train_mode(model, frozen: set[str]) -> None:
    """Train mode, except frozen parts, which run in eval mode (no dropout): they compute a fixed
    function, which is also what makes their output cacheable."""
    model.train()
    for name, module in hf_model(model.encoder).named_modules():
        if encoder_component(name + ".") in frozen - {"encoder.other", "pooler"}:
            module.eval()
    for task, head in model.heads.items():
        if f"head.{task}" in frozen:
            head.eval()


def modes_changed(modes: list[tuple]) -> bool:
    """True when something (a prediction between steps restores train mode everywhere) has changed a
    module's mode since set_train_mode; reading ~100 flags is far cheaper than setting them."""
    return any(m.training != want for m, want in modes)


def warmup_linear(total_steps: int, warmup_ratio: float):
    warmup = int(total_steps * warmup_ratio)

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


class LossWindow:
    """The losses of the steps since the last report, summed where they were computed."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.total, self.tasks, self.steps, self.examples, self.started = None, {}, 0, 0, 0.0
        self.task_steps: dict[str, int] = {}

    def add(self, loss: torch.Tensor, losses: dict, examples: int, started: float) -> None:
        """One step's losses and batch size; `started`: when the step began (the window's first counts)."""
        loss = loss.detach()
        self.total = loss if self.total is None else self.total + loss
        for t, v in losses.items():
            self.tasks[t] = v.detach() if t not in self.tasks else self.tasks[t] + v.detach()
            self.task_steps[t] = self.task_steps.get(t, 0) + 1
        if self.steps == 0:
            self.started = started
        self.steps += 1
        self.examples += examples

    def read(self) -> tuple[float, dict[str, float]]:
        """(mean loss, {task: mean loss}) over the window: one copy from the device for all of them."""
        names = list(self.tasks)
        values = torch.stack([self.total.float(), *(self.tasks[t].float() for t in names)]).tolist()
        return values[0] / self.steps, {t: v / self.task_steps[t] for t, v in zip(names, values[1:])}


class TrainStep:
    """One optimisation step at a time: forward and backward through the runner, clipping, the optimizer and
    learning-rate schedule; set up once per run (the runner wraps the model and optimizer here). Calling it
    returns a step event when a report is due (see the module's doc), an error event for a non-finite loss,
    or None."""

    def __init__(self, model, config, runner, optimizer, log_vars, frozen, data, cache, label_ids, total_steps):
        self.model, self.config, self.runner, self.log_vars, self.frozen = model, config, runner, log_vars, frozen
        self.label_ids, self.total_steps = label_ids, total_steps
        self.lr_factor = warmup_linear(total_steps, config.warmup_ratio)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_factor)
        self.forward, self.optimizer = runner.prepare(
            model, optimizer, data.texts, cache, label_ids, config.task_sampling
        )
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        encoder = [ps for c, ps in component_params(model).items() if not c.startswith("head.")]
        self.encoder_trainable = [(n, p) for ps in encoder for n, p in ps if p.requires_grad]
        # L2-SP (Li et al. 2018): the weights the run starts from, which the penalty pulls the encoder back to
        self.anchor = [(p, p.detach().clone()) for _, p in self.encoder_trainable] if config.l2sp else []
        set_train_mode(model, frozen)
        self.modes = [(m, m.training) for m in model.modules()]
        self.window, self.tasks_seen, self.weights_used = LossWindow(), [], {}

    def autocast(self):
        return torch.autocast(self.model.device.type, torch.bfloat16, enabled=self.config.precision == "bf16")

    def __call__(self, tasks, idx, step: int, epoch: int) -> dict | None:
        config, every_step, started = self.config, self.config.log_every == 1, time.perf_counter()
        if modes_changed(self.modes):
            set_train_mode(self.model, self.frozen)
        loss, losses = self.runner.forward_backward(
            self.forward, self.label_ids, idx, tasks, self.log_vars, self.autocast
        )
        if every_step and not torch.isfinite(loss):  # caught before the update: nothing changes
            return self.error(loss.item(), step)
        if step == 0:  # remember which encoder weights a run changes; checkpoints store only those
            self.model.trained_params.update(n for n, p in self.encoder_trainable if p.grad is not None)
        for p, start in self.anchor:  # the gradient of l2sp/2 * ||w - w0||^2, added to the loss's
            if p.grad is not None:
                p.grad.add_(p.detach() - start, alpha=config.l2sp)
        if config.grad_clip:
            self.runner.clip_grad_norm_(self.trainable, config.grad_clip)
        if self.log_vars:  # the task weights this step's loss used (the step below changes them)
            self.weights_used = {t: s.detach().clone() for t, s in self.log_vars.items()}
        self.optimizer.step()
        self.scheduler.step()
        self.window.add(loss, losses, len(idx), started)
        self.tasks_seen += [t for t in tasks if t not in self.tasks_seen]
        due = every_step or (step + 1) % config.log_every == 0 or step + 1 == self.total_steps
        return self.report(step, epoch) if due else None

    def flush(self, step: int, epoch: int) -> dict | None:
        """The report of the steps not reported yet (before an evaluation, or when the run ends early)."""
        return self.report(step - 1, epoch) if self.window.steps else None

    def report(self, step: int, epoch: int) -> dict:
        """The step event of the steps since the last report (their mean losses), as of step `step`."""
        loss, losses = self.window.read()  # waits for the device: the time below is the steps' own
        seconds = time.perf_counter() - self.window.started  # from the window's first step, not the last report
        if not math.isfinite(loss):
            return self.error(loss, step)
        config, window, tasks = self.config, self.window, self.tasks_seen
        weights = {t: math.exp(-s.item()) for t, s in self.weights_used.items()} if self.log_vars else None
        event = {
            "type": "step",
            "step": step + 1,
            "epoch": epoch,
            "tasks": list(tasks),
            "loss": loss,
            "losses": losses,
            "task_weights": weights,
            "lr_encoder": config.lr_encoder * self.lr_factor(step) if self.encoder_trainable else 0.0,
            "lr_heads": config.lr_heads * self.lr_factor(step),
            "examples_per_sec": window.examples / max(seconds, 1e-9),
            "progress": (step + 1) / self.total_steps,
            "steps": window.steps,  # steps this report covers (log_every)
        }
        self.window.reset()
        self.tasks_seen = []
        return event

    def error(self, loss: float, step: int) -> dict:
        self.window.reset()
        message = f"the loss became {loss} at step {step + 1}; training stopped and the last good weights"
        return {"type": "error", "step": step, "message": message + " were kept (try a lower learning rate)"}
