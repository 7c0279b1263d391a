"""Checks a labelled dataset for the ways data gives answers away.

- leakage: exact or near-duplicate sentences across splits (normalised text; character-trigram
  and word overlap),
- template traces: content phrases of 3+ words recurring in many sentences, sentences sharing a
  skeleton with a word or two swapped, and repeated openings,
- label shortcuts: a word without topical or emotional meaning (function words, punctuation,
  numbers, emoji, casing, length) that predicts a label far above its base rate,
- balance: counts per label combination.

Run: python -m mtl datacheck data/train.csv data/val.csv data/test.csv (or python -m mtl.datacheck ...)
"""

import re
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

# Words with no topical or emotional meaning: if one predicts a label, the data has a shortcut.
FUNCTION_WORDS = set(
    """a an the and or but if so as at by for from in into of off on onto out over to up with without
    about after before during since until while than then there here this that these those it its it's
    i me my mine we us our you your he him his she her they them their who whom whose which what when
    where why how is are was were be been being am do does did done have has had having will would
    shall should can could may might must just also too very really quite still even only again ever
    all any each every some no not nor both either neither more most much many few less least such
    own same other another one two three via per vs etc yes yeah oh ok okay lol tbh ngl imo omg
    breaking reportedly according said says say told asked""".split()
)
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[!?#@:;\"()]")


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.findall(r"[a-z0-9]+", text))


def words(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


def _style_features(text: str) -> set[str]:
    """Style features: function words, punctuation, numbers, emoji, casing, length."""
    toks = words(text)
    feats = {t for t in toks if t in FUNCTION_WORDS or not t[0].isalnum()}
    if any(ch.isdigit() for ch in text):
        feats.add("<number>")
    if any(unicodedata.category(ch) == "So" for ch in text):
        feats.add("<emoji>")
    if re.search(r"\b[A-Z]{3,}\b", text):
        feats.add("<ALLCAPS word>")
    if text[:1].islower():
        feats.add("<lowercase start>")
    n = len(text.split())
    feats.add("<short: <=8 words>" if n <= 8 else "<long: >=25 words>" if n >= 25 else "<medium length>")
    return feats


def _incidence(sets: list[set], vocab: dict) -> np.ndarray:
    m = np.zeros((len(sets), len(vocab)), dtype=np.float32)
    for i, s in enumerate(sets):
        m[i, [vocab[x] for x in s if x in vocab]] = 1.0
    return m


def _jaccard(a_sets, b_sets) -> np.ndarray:
    vocab = {x: i for i, x in enumerate(sorted(set().union(*a_sets, *b_sets)))}
    a, b = _incidence(a_sets, vocab), _incidence(b_sets, vocab)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return inter / np.maximum(union, 1)


def _trigrams(text):
    s = f" {normalize(text)} "
    return {s[i : i + 3] for i in range(len(s) - 2)}


def similar_pairs(a: list[str], b: list[str] | None = None, char: float = 0.8, token: float = 0.7):
    """[(i, j, char_jaccard, word_jaccard)] with normalised texts equal or overlapping above a threshold.
    With b=None, pairs within a (i < j)."""
    same = b is None
    b = a if same else b
    ca, cb = [_trigrams(t) for t in a], [_trigrams(t) for t in b]
    wa, wb = [set(normalize(t).split()) for t in a], [set(normalize(t).split()) for t in b]
    cj, wj = _jaccard(ca, cb), _jaccard(wa, wb)
    hit = (cj >= char) | (wj >= token)
    if same:
        hit = np.triu(hit, k=1)
    return [(int(i), int(j), float(cj[i, j]), float(wj[i, j])) for i, j in zip(*np.nonzero(hit))]


def nearest_by_meaning(texts: list[str], pool: list[str], base_model: str = "default"):
    """(cosine, index) of each text's closest sentence in pool, by the base model's normalised mean-pooled
    embeddings: finds the same scene told in other words, which similar_pairs' character and word overlap misses."""
    from .encoder import build_encoder, encode

    encoder = build_encoder(base_model, normalize=True, max_seq_length=256)
    sims = encode(encoder, texts) @ encode(encoder, pool).T
    best = sims.argmax(axis=1)
    return sims[np.arange(len(texts)), best], best


def repeated_phrases(texts: list[str], n: int = 3, max_share: float = 0.005, min_count: int = 8):
    """Word n-grams containing a content word that occur in more than max(min_count, share) sentences."""
    counts = Counter()
    for t in texts:
        toks = normalize(t).split()
        grams = {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)}
        counts.update(g for g in grams if any(w not in FUNCTION_WORDS and not w.isdigit() for w in g))
    limit = max(min_count, int(max_share * len(texts)))
    return sorted(((" ".join(g), c) for g, c in counts.items() if c > limit), key=lambda x: -x[1])


def repeated_openings(texts: list[str], n: int = 3, max_count: int = 6, max_share: float = 0.001):
    """n-word openings used by more than max(max_count, max_share of the texts) sentences: 6 in v1's 2,304,
    12 in the 12,380 of v1 + v2, where natural openings ("does anyone know") recur more often."""
    counts = Counter(" ".join(normalize(t).split()[:n]) for t in texts if len(normalize(t).split()) > n)
    limit = max(max_count, int(max_share * len(texts)))
    return sorted(((o, c) for o, c in counts.items() if c > limit), key=lambda x: -x[1])


def skeleton_pairs(texts: list[str], min_words: int = 6, max_changed: int = 2):
    """Sentence pairs of the same length (>= min_words) that differ in at most max_changed positions."""
    by_len = defaultdict(list)
    for i, t in enumerate(texts):
        toks = normalize(t).split()
        if len(toks) >= min_words:
            by_len[len(toks)].append((i, toks))
    pairs = []
    for group in by_len.values():
        for x in range(len(group)):
            for y in range(x + 1, len(group)):
                (i, a), (j, b) = group[x], group[y]
                if sum(p != q for p, q in zip(a, b)) <= max_changed:
                    pairs.append((i, j))
    return pairs


def label_shortcuts(texts: list[str], labels: list, min_count: int = 20, lift: float = 2.0, margin: float = 0.3):
    """Style features whose sentences carry one label far above its base rate:
    P(label | feature) >= max(lift * base, base + margin), on at least min_count sentences."""
    idx = [i for i, y in enumerate(labels) if y is not None]
    base = Counter(labels[i] for i in idx)
    total = len(idx)
    by_feat = defaultdict(Counter)
    for i in idx:
        for f in _style_features(texts[i]):
            by_feat[f][labels[i]] += 1
    found = []
    for f, c in by_feat.items():
        n = sum(c.values())
        if n < min_count:
            continue
        for label, k in c.items():
            p, b = k / n, base[label] / total
            if p >= max(lift * b, b + margin):
                found.append((f, label, k, n, p, b))
    return sorted(found, key=lambda x: -x[4])


def register_tokens(texts: list[str], groups: list, min_count: int = 10, share: float = 0.8) -> set[str]:
    """Words that mark a register: seen in >= min_count texts, >= `share` of them in one register (@mentions,
    'lol', 'EUR', 'Q3', star ratings...)."""
    seen: dict[str, Counter] = defaultdict(Counter)
    for text, group in zip(texts, groups):
        for w in set(words(text)):
            seen[w][group] += 1
    return {w for w, c in seen.items() if (n := sum(c.values())) >= min_count and max(c.values()) >= share * n}


def register_shortcuts(texts: list[str], labels: list, groups: list, folds: int = 5, seed: int = 0) -> dict:
    """Can a bag-of-words classifier predict the label from register-marking words alone? Cross-validated
    accuracy from (markers) the register-marking words only, (content) every other word, (register) which
    register the text is in, and (majority) always the most common label. Markers should not beat content,
    and should add little over the majority label."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    keep = [i for i, v in enumerate(labels) if v is not None and groups[i] is not None]
    texts, y, groups = [texts[i] for i in keep], [labels[i] for i in keep], [groups[i] for i in keep]
    markers = register_tokens(texts, groups)
    docs = [words(t) for t in texts]
    views = {
        "markers": [[w for w in d if w in markers] for d in docs],
        "content": [[w for w in d if w not in markers] for d in docs],
        "register": [[f"<{g}>"] for g in groups],
    }
    out = {"majority": Counter(y).most_common(1)[0][1] / len(y), "marker_words": len(markers)}
    for name, tokens in views.items():
        x = CountVectorizer(analyzer=lambda d: d, binary=True).fit_transform(tokens)
        model = LogisticRegression(max_iter=1000, C=1.0)
        out[name] = float(cross_val_score(model, x, y, cv=folds).mean())
    return out


def cell_counts(labels: dict[str, list]) -> Counter:
    """Counts per combination of labels across tasks, e.g. ('Sports', 'neutral')."""
    return Counter(zip(*labels.values()))


def counts_table(splits: dict) -> str:
    """Markdown: one row per label combination, one column per split, plus the total."""
    counts = {name: cell_counts(d.labels) for name, d in splits.items()}
    cells = sorted(set().union(*counts.values()))
    tasks = list(next(iter(splits.values())).labels)
    head = "| " + " | ".join(tasks) + " | " + " | ".join(Path(n).stem for n in splits) + " | total |"
    lines = [head, "|" + "---|" * (len(tasks) + len(splits) + 1)]
    for cell in cells:
        row = [counts[n][cell] for n in splits]
        lines.append("| " + " | ".join(map(str, cell)) + " | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    totals = [len(d) for d in splits.values()]
    lines.append("| **all** |" + " |" * (len(tasks) - 1) + " " + " | ".join(map(str, totals)) + f" | {sum(totals)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from .data import SHIPPED_SPLITS, load_labelled

    paths = (argv if argv is not None else sys.argv[1:]) or list(SHIPPED_SPLITS)
    splits = {p: load_labelled(p) for p in paths}
    problems = 0
    everything = [t for d in splits.values() for t in d.texts]
    for p, d in splits.items():
        print(f"{p}: {len(d)} sentences")
    names = list(splits)
    for x in range(len(names)):
        for y in range(x + 1, len(names)):
            a, b = splits[names[x]].texts, splits[names[y]].texts
            pairs = similar_pairs(a, b)
            problems += len(pairs)
            print(f"near-duplicates {names[x]} x {names[y]}: {len(pairs)}")
            for i, j, c, w in pairs[:10]:
                print(f"  {c:.2f}/{w:.2f}  {a[i]!r}  ~  {b[j]!r}")
    for title, found in (
        ("repeated phrases", repeated_phrases(everything)),
        ("repeated openings", repeated_openings(everything)),
        ("shared skeletons", skeleton_pairs(everything)),
    ):
        problems += len(found)
        print(f"{title}: {len(found)}" + "".join(f"\n  {item}" for item in found[:10]))
    merged = {
        t: [v for d in splits.values() for v in d.labels.get(t, [None] * len(d))]
        for t in dict.fromkeys(t for d in splits.values() for t in d.labels)
    }
    for task, labels in merged.items():
        found = label_shortcuts(everything, labels)
        problems += len(found)
        print(f"label shortcuts for {task}: {len(found)}")
        for f, label, k, n, p, b in found:
            print(f"  {f!r} -> {label}: {k}/{n} = {p:.0%} (base rate {b:.0%})")
    groups = [g for d in splits.values() for g in (d.groups or [None] * len(d))]
    if len({g for g in groups if g is not None}) > 1:
        problems += report_register_shortcuts(everything, merged, groups)
    print("\ncounts per label combination and split:\n" + counts_table(splits))
    print("\nproblems found:", problems)
    return 1 if problems else 0


def report_register_shortcuts(texts, merged: dict, groups) -> int:
    """Print register_shortcuts per task; a problem when register-marking words beat the content words."""
    problems = 0
    for task, labels in merged.items():
        r = register_shortcuts(texts, labels, groups)
        flag = r["markers"] > r["content"]
        problems += flag
        print(
            f"register shortcuts for {task} ({r['marker_words']} register-marking words): accuracy from the markers "
            f"{r['markers']:.3f}, from the content {r['content']:.3f}, from the register alone {r['register']:.3f}, "
            f"majority {r['majority']:.3f}" + ("  <- markers beat content" if flag else "")
        )
    return problems


if __name__ == "__main__":
    raise SystemExit(main())
