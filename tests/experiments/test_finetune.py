"""Fine-tuned students (``--finetune``, ``--preset finetune``) on a tiny random BERT.

The encoder is a 2-layer, 32-wide BERT with MiniLM's vocabulary (random weights), so a run
takes about a second; the task is separable by the words it contains, so a fine-tuned model
must learn it (chance is 0.5).
"""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

POS = ["great", "wonderful", "happy", "good", "lovely"]
NEG = ["awful", "terrible", "sad", "bad", "horrible"]
FILL = ["the", "movie", "was", "a", "day", "of", "it", "and", "very", "story", "plot"]
FT = {"epochs": 3, "lr": 3e-3, "batch_size": 16, "max_length": 16, "max_steps": 0,
      "eval_every": 10, "patience": 0, "device": "cpu"}


def _text(rng, positive):
    words = list(rng.choice(FILL, size=rng.integers(2, 9)))
    words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(POS if positive else NEG)))
    return " ".join(words)


def toy_task(kind="cls", seed=0, n_student=240, n_test=120):
    """An easy task: ``cls`` (is the text positive?) or ``pair`` (is A the positive one?)."""
    from experiments.data.tasks import Task
    rng = np.random.default_rng(seed)
    n_weak = 60
    if kind == "cls":
        n = n_weak + n_student + n_test
        y = rng.integers(0, 2, size=n)
        texts = [_text(rng, bool(v)) for v in y]
        idx = np.arange(n)
        splits = {"weak_gt": (idx[:n_weak], y[:n_weak]),
                  "student": (idx[n_weak:n_weak + n_student], y[n_weak:n_weak + n_student]),
                  "test": (idx[n_weak + n_student:], y[n_weak + n_student:])}
    else:
        n = 2 * (n_weak + n_student + n_test)
        texts = [_text(rng, i % 2 == 0) for i in range(n)]  # even: positive
        pos, neg = np.arange(0, n, 2), np.arange(1, n, 2)
        y = rng.integers(0, 2, size=n // 2)
        items = np.stack([np.where(y == 1, pos, neg), np.where(y == 1, neg, pos)], axis=1)
        cuts = [n_weak, n_weak + n_student]
        splits = {k: (it, yy) for k, it, yy in zip(("weak_gt", "student", "test"),
                                                   np.split(items, cuts), np.split(y, cuts))}
    info = {"pool": len(texts), "source": "toy", "val_frac": 0.2,
            "sizes": {k: int(len(v[1])) for k, v in splits.items()}}
    return Task(f"toy_{kind}", kind, f"toy-{kind}-{len(texts)}", texts, splits, seed, info)


@pytest.fixture
def tiny_encoder(monkeypatch, cache):
    """A 2-layer BERT with MiniLM's vocabulary instead of the pretrained MiniLM-L6."""
    import experiments.finetune as FT_

    def load(strong="minilm-l6"):
        cfg = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, intermediate_size=64,
                                      max_position_embeddings=64)
        return transformers.BertModel(cfg)
    monkeypatch.setattr(FT_, "load_encoder", load)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a sweep's workers; threads only contend at this size
    yield load
    torch.set_num_threads(threads)


def _acc(p, y):
    return float(np.mean((p > 0.5) == (y == 1)))


@pytest.mark.parametrize("kind", ["cls", "pair"])
def test_finetuned_student_learns_a_separable_task(tiny_encoder, kind):
    from experiments.finetune import finetune_predict
    from experiments.losses import make_loss
    from experiments.pipeline import split_student
    task = toy_task(kind)
    _, y = task.splits["student"]
    tr, va = split_student(len(y), 0.2)
    p, info = finetune_predict(task, y[tr].astype(float), y[va], make_loss("ce"), seed=0, **FT)
    y_test = task.splits["test"][1]
    assert p.shape == y_test.shape and np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    assert _acc(p, y_test) >= 0.85  # chance: 0.5
    per_epoch = int(np.ceil(len(tr) / FT["batch_size"]))
    assert info["steps"] == info["steps_planned"] == 3 * per_epoch
    assert info["evals"] == int(np.ceil(3 * per_epoch / 10))
    assert 1 <= info["best_step"] <= info["steps"] and info["val_acc"] >= 0.85
    assert info["device"] == "cpu" and info["autocast"] == "float32" and not info["stopped_early"]


def test_max_steps_and_early_stopping(tiny_encoder):
    from experiments.finetune import finetune_predict
    from experiments.losses import make_loss
    from experiments.pipeline import split_student
    task = toy_task("cls")
    _, y = task.splits["student"]
    tr, va = split_student(len(y), 0.2)
    _, info = finetune_predict(task, y[tr].astype(float), y[va], make_loss("ce"), 0,
                               **{**FT, "max_steps": 7, "eval_every": 3})
    assert info["steps"] == info["steps_planned"] == 7 and info["evals"] == 3  # steps 3, 6, 7
    # labels the model cannot fit (all 0.5 → validation accuracy never improves): stops early
    flat = np.full(len(tr), 0.5)
    _, info = finetune_predict(task, flat, np.zeros(len(va)), make_loss("ce"), 0,
                               **{**FT, "epochs": 20, "eval_every": 2, "patience": 2, "lr": 1e-9})
    assert info["stopped_early"] and info["steps"] < info["steps_planned"]
    assert info["evals"] == 3 and info["best_step"] == 6  # 2 evals without gain; ties keep the later


def test_bucketed_batches_cover_every_item_once():
    from experiments.finetune import _bucketed_batches
    rng = np.random.default_rng(3)
    lengths = rng.integers(3, 60, size=203)
    batches = _bucketed_batches(np.random.default_rng(0), lengths, 16, bucket=4)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(203))
    assert all(np.all(np.diff(lengths[b]) >= 0) for b in batches)  # sorted within a bucket
    # less padding than plain random batches of the same size
    pad = sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)
    perm = np.random.default_rng(0).permutation(203)
    plain = [perm[i:i + 16] for i in range(0, 203, 16)]
    assert pad < sum(len(b) * lengths[b].max() - lengths[b].sum() for b in plain)


def test_token_cache_matches_the_tokenizer(cache):
    from transformers import AutoTokenizer
    from experiments.embed import data_cache_dir, minilm_path, tokenize_cached
    texts = ["a wonderful, moving film", "dull", "I hated every single minute of it " * 4]
    ids, lengths = tokenize_cached(texts, "unit", 12)
    tok = AutoTokenizer.from_pretrained(minilm_path())
    for i, t in enumerate(texts):
        want = tok(t, truncation=True, max_length=12)["input_ids"]
        assert lengths[i] == len(want) and ids[i, :lengths[i]].tolist() == want
        assert (ids[i, lengths[i]:] == tok.pad_token_id).all()
    files = list(data_cache_dir("tokens").glob("*.npy"))
    assert len(files) == 1
    again, _ = tokenize_cached(texts, "unit", 12)  # read back from the file
    np.testing.assert_array_equal(again, ids)
    tokenize_cached(texts, "unit", 16)             # another max length: another file
    assert len(list(data_cache_dir("tokens").glob("*.npy"))) == 2


def test_finetuned_records_and_kl_equals_ce(tiny_encoder, monkeypatch, tmp_path):
    """Through the runner: a reference (fine-tuned ceiling) and ce / kl students.  KL trains
    exactly like CE (C8), so with the same seed they make the same predictions."""
    import experiments.embed as E
    import experiments.runner as R
    from paper_figs.readers import FINETUNED_SUFFIX, read_runs
    task = toy_task("cls")
    monkeypatch.setattr(R, "_task", lambda config: task)
    y_all = np.zeros(len(task.texts))
    for items, y in task.splits.values():
        y_all[items] = y

    def features(task_, model, max_length=128, quiet=True):  # a weak model ~90 % right
        rng = np.random.default_rng(1)
        return (y_all[:, None] + rng.normal(scale=0.9, size=(len(y_all), 4))).astype(np.float32)
    monkeypatch.setattr(E, "features", features)
    sweep = {**R.FINETUNE_SWEEP, "tasks": ["toy"], "losses": ["ce", "kl"], "noise": [0.1],
             "seeds": 1, "finetune": FT}
    refs, runs = R.expand(sweep)
    assert len(refs) == 1 and len(runs) == 2
    recs = {c["loss"]: R.execute_run(c, tmp_path) for c in runs}
    from w2sg.records import read_record
    ref = read_record(R.reference_path(runs[0], tmp_path))
    assert ref.baselines.ceiling.acc >= 0.85 and ref.train_info["ceiling"]["device"] == "cpu"
    assert 0.6 < ref.baselines.weak.acc < 0.95
    ce, kl = recs["ce"], recs["kl"]
    for rec in (ce, kl):
        assert rec.config["finetune"] == FT
        assert rec.metrics.acc > ref.baselines.weak.acc - 0.1 and rec.metrics.acc >= 0.7
        assert np.isfinite(rec.metrics.pgr) and rec.metrics.agreement_weak_labels_train is None
        assert rec.train_info["n_flipped"] == round(0.1 * 240)  # flips over the whole student split
        assert rec.train_info["steps"] == 3 * 12
        again = read_record(R.run_path(rec.config, tmp_path))  # the stored record reads back
        assert again.metrics.acc == rec.metrics.acc
    assert kl.metrics.acc == ce.metrics.acc
    from experiments.losses import fdiv_kernel_for  # provenance: which kernel computed the loss
    assert ce.train_info["loss_kernel"] is None and kl.train_info["loss_kernel"] == fdiv_kernel_for("kl")
    assert kl.metrics.auroc == pytest.approx(ce.metrics.auroc, abs=1e-6)
    assert kl.train_info["val_acc"] == ce.train_info["val_acc"]
    rows = read_runs(tmp_path)  # figures group fine-tuned runs into their own panel
    assert len(rows) == 2 and all(r["finetune"] and r["pair"].endswith(FINETUNED_SUFFIX) for r in rows)


def test_finetune_preset_expands_and_validates(capsys):
    from experiments.runner import FINETUNE_SWEEP, PRESETS, expand
    from w2sg.cli import main
    refs, runs = expand(PRESETS["finetune"])
    n = len(FINETUNE_SWEEP["tasks"]) * len(FINETUNE_SWEEP["weak"]) * FINETUNE_SWEEP["seeds"]
    assert len(refs) == n == 3
    assert len(runs) == n * len(FINETUNE_SWEEP["losses"]) * len(FINETUNE_SWEEP["noise"]) == 54
    assert {"ce", "kl", "tv", "js", "hellinger", "reverse_kl"} <= {r["loss"] for r in runs}
    assert {r["noise"] for r in runs} == {0.0, 0.2, 0.4}
    assert all(r["finetune"]["max_length"] == 48 for r in refs + runs)
    assert main(["run", "--preset", "finetune", "--dry-run", "--json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["references"], out["runs"]) == (3, 54) and out["sweep"]["finetune"]["device"] == "cpu"
    assert main(["run", "--preset", "finetune", "--dry-run", "--json", "--seeds", "5",
                 "--losses", "ce", "kl"]) == 0  # flags override the preset
    assert json.loads(capsys.readouterr().out)["runs"] == 5 * 2 * 3


@pytest.mark.parametrize("argv, message", [
    (["run", "--preset", "finetune", "--dry-run", "--device", "tpu"], "unknown device 'tpu'"),
    (["run", "--preset", "finetune", "--dry-run", "--quick"], "exclude each other"),
    (["run", "--finetune", "--dry-run", "--config", "{cfg}"], "max_steps must be an integer"),
    (["reproduce", "--finetune", "--device", "gpu0"], "unknown device"),
])
def test_finetune_usage_errors(argv, message, capsys, tmp_path):
    from w2sg.cli import main
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[finetune]\nmax_steps = -1\n")
    assert main([a.replace("{cfg}", str(cfg)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cuda_requested_without_cuda_is_a_usage_error(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from w2sg.cli import main
    for argv in (["run", "--preset", "finetune", "--dry-run", "--device", "cuda"],
                 ["reproduce", "--finetune", "--device", "cuda"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "CUDA is not available" in err and len(err.splitlines()) == 1


def test_reproduce_finetune_adds_the_preset_step(monkeypatch, tmp_path):
    import paper_figs.build as B
    import paper_figs.reproduce as R
    calls = []
    for name in list(R.STEPS):
        monkeypatch.setitem(R.STEPS, name, lambda root, log=None, _n=name, **kw: calls.append((_n, kw)) or 0)
    monkeypatch.setattr(B, "build_all", lambda root, only=None: [])
    out = R.reproduce(tmp_path, quick=True, log=lambda *a: None, finetune=True, device="cpu")
    runs = [a for a in calls if a[0].startswith("run")]
    assert runs == [("run", {"quick": True, "tune": None}),
                    ("run-finetune", {"quick": False, "finetune": True, "device": "cpu"})]
    assert [s["step"] for s in out["steps"]][:2] == ["run", "run-finetune"]
    calls.clear()
    R.reproduce(tmp_path, quick=True, log=lambda *a: None)  # without --finetune: no preset run
    assert not any(kw.get("finetune") for _, kw in calls)
    from experiments.runner import FINETUNE_SWEEP
    sweep = R.sweep_for(False, finetune=True, device="cpu")
    assert sweep["tasks"] == FINETUNE_SWEEP["tasks"] and sweep["finetune"]["device"] == "cpu"
