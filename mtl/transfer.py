"""Transferability without training: LogME scores of the candidate encoders available offline,
of each pooling mode, and of the output of every layer of the backbone, per task."""

import numpy as np
import torch

from .batches import batches
from .config import POOLING_MODES
from .encoder import build_encoder, encode, hf_model
from .logme import logme
from .results import layer_f1


@torch.inference_mode()
def layer_embeddings(encoder, texts: list[str], batch_size: int = 64) -> list[np.ndarray]:
    """Mean-pooled hidden states after the embeddings (index 0) and after each layer (1..N)."""
    hf = hf_model(encoder)
    was_training = encoder.training
    encoder.eval()
    try:
        return _layer_means(encoder, hf, texts, batch_size)
    finally:
        encoder.train(was_training)


def _layer_means(encoder, hf, texts, batch_size):
    out = None
    for idx, f in batches(encoder, texts, batch_size, encoder.device):
        hidden = hf(
            input_ids=f["input_ids"],
            attention_mask=f["attention_mask"],
            token_type_ids=f.get("token_type_ids"),
            output_hidden_states=True,
        ).hidden_states
        mask = f["attention_mask"].unsqueeze(-1).float()
        if out is None:
            out = [np.zeros((len(texts), h.shape[-1]), dtype=np.float32) for h in hidden]
        for k, h in enumerate(hidden):
            out[k][idx] = ((h * mask).sum(1) / mask.sum(1)).float().cpu().numpy()
    return out


def random_encoder(base: str = "default"):
    """The backbone's architecture with freshly initialised weights: what pretraining is worth."""
    enc = build_encoder(base)
    torch.manual_seed(0)
    std = getattr(hf_model(enc).config, "initializer_range", 0.02)
    with torch.no_grad():
        for module in hf_model(enc).modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
                module.weight.normal_(0.0, std)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
            elif isinstance(module, torch.nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
    return enc


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def task_scores(features: np.ndarray, labels: dict[str, np.ndarray]) -> dict[str, float]:
    """{task: LogME} of one feature matrix, each task on its labelled rows (label -1: unlabelled)."""
    return {t: logme(features[y >= 0], y[y >= 0]) for t, y in labels.items() if (y >= 0).sum() > 1}


def label_arrays(data) -> dict[str, np.ndarray]:
    return {t: np.array(data.label_ids(t)) for t in data.tasks}


def layer_scores(encoder, data) -> dict[int, dict[str, float]]:
    """{k: {task: LogME of the mean-pooled hidden state k}} for one encoder on labelled data."""
    labels = label_arrays(data)
    return {k: task_scores(feats, labels) for k, feats in enumerate(layer_embeddings(encoder, data.texts))}


def layer_agreement(scores: dict[int, dict], summary: list[dict]) -> dict:
    """Does LogME's ranking of layers agree with the measured layer freezing curve? Freezing the bottom
    K layers trains on top of hidden state K (0 = the embeddings' output), so LogME of that state is
    paired with the test macro-F1 of `bottom:K`; per task, the Spearman correlation over K."""
    f1 = layer_f1(summary)
    ks = sorted(k for k in f1 if k >= 0 and k in scores)
    out = {}
    for task in sorted({t for k in ks for t in f1[k]}):
        pairs = [(k, scores[k][task], f1[k][task]) for k in ks if task in scores[k]]
        if len(pairs) >= 3:
            rho = spearman([p[1] for p in pairs], [p[2] for p in pairs])
            out[task] = {"spearman": rho, "pairs": [{"K": k, "logme": a, "macro_f1": b} for k, a, b in pairs]}
    return out


def score_candidates(data, checkpoint_encoder=None, base: str = "default") -> dict:
    """{"encoders": {name: {task: score}}, "pooling": {...}, "layers": {k: {task: score}}}."""
    labels = label_arrays(data)
    base_enc = build_encoder(base)
    result = {"encoders": {}, "pooling": {}, "layers": {}}
    for mode in POOLING_MODES:
        result["pooling"][mode] = task_scores(encode(base_enc, data.texts, pooling=mode), labels)
    result["encoders"]["all-MiniLM-L6-v2 (pretrained)"] = result["pooling"]["mean"]
    random = encode(random_encoder(base), data.texts)
    result["encoders"]["same architecture, random weights"] = task_scores(random, labels)
    if checkpoint_encoder is not None:
        tuned = encode(checkpoint_encoder, data.texts)
        result["encoders"]["shipped model's fine-tuned encoder"] = task_scores(tuned, labels)
    result["layers"] = layer_scores(base_enc, data)
    return result
