"""Fine-tuned students (``--finetune``, ``--preset finetune``) on a tiny random BERT.

The encoder is a 3-layer, 32-wide BERT with MiniLM's vocabulary (random weights), so a run
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
FT = {"layers": "all", "epochs": 3, "lr": 3e-3, "schedule": "constant", "warmup": 0.0,
      "dropout": 0.0, "batch_size": 16, "max_length": 16, "max_steps": 0, "select": "best",
      "eval_every": 10, "patience": 0, "device": "cpu", "tune": None}
FTP = {k: v for k, v in FT.items() if k != "tune"}  # finetune_predict's keyword arguments
TINY = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=64)


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

    def load(strong="minilm-l6"):  # the same random weights on every call (as a file would)
        state = torch.random.get_rng_state()
        torch.manual_seed(1234)
        model = transformers.BertModel(transformers.BertConfig(**TINY))
        torch.random.set_rng_state(state)
        return model
    monkeypatch.setattr(FT_, "load_encoder", load)
    monkeypatch.setattr(FT_, "encoder_identity", lambda: "tiny-random-bert-1234")
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
    p, info = finetune_predict(task, y[tr].astype(float), y[va], make_loss("ce"), seed=0, **FTP)
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
                               **{**FTP, "max_steps": 7, "eval_every": 3})
    assert info["steps"] == info["steps_planned"] == 7 and info["evals"] == 3  # steps 3, 6, 7
    # labels the model cannot fit (all 0.5 → validation accuracy never improves): stops early
    flat = np.full(len(tr), 0.5)
    _, info = finetune_predict(task, flat, np.zeros(len(va)), make_loss("ce"), 0,
                               **{**FTP, "epochs": 20, "eval_every": 2, "patience": 2, "lr": 1e-9})
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
    sweep = {**R.FINETUNE_SWEEP, "tasks": ["toy"], "weak": ["minilm-l3"], "losses": ["ce", "kl"],
             "noise": [0.1], "seeds": 1, "finetune": FT}
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
    """The preset has ≥ 20 (task, weak, seed) pairs per (loss, noise) cell, the seven losses,
    noise 0 and 0.4, the top-K recipe and lr tuning on seeds disjoint from the evaluation's."""
    from experiments.runner import FINETUNE_SWEEP, PRESETS, expand
    from w2sg.cli import main
    refs, runs = expand(PRESETS["finetune"])
    n = len(FINETUNE_SWEEP["tasks"]) * len(FINETUNE_SWEEP["weak"]) * FINETUNE_SWEEP["seeds"]
    assert len(refs) == n == 20
    assert len(runs) == n * 7 * 2 == 280
    assert {r["loss"] for r in runs} == {"ce", "kl", "tv", "js", "hellinger", "reverse_kl", "aux_conf"}
    assert {r["noise"] for r in runs} == {0.0, 0.4}
    assert {(r["task"], r["weak"]) for r in refs} == {("vader_cls", "minilm-l6-layer0"),
                                                      ("vader_cls", "minilm-l3")}
    ft = FINETUNE_SWEEP["finetune"]
    assert (ft["layers"], ft["epochs"], ft["max_steps"], ft["select"], ft["dropout"]) == (1, 1, 0, "last", 0.0)
    assert not set(ft["tune"]["seeds"]) & set(range(FINETUNE_SWEEP["seeds"]))
    assert ft["tune"]["noise"] == 0.4  # one tuning per (panel, loss): 42 tuning runs
    assert main(["run", "--preset", "finetune", "--dry-run", "--json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    sw = out["sweep"]
    assert (out["references"], out["runs"]) == (20, 280) and sw["finetune"]["device"] == "cpu"
    assert (sw["tasks"], sw["seeds"], sw["noise"], sw["finetune"]["layers"]) == (
        ["vader_cls"], 10, [0.0, 0.4], 1)
    assert sw["weak"] == ["minilm-l6-layer0", "minilm-l3"] and len(sw["losses"]) == 7
    assert sw["finetune"]["tune"]["lr"] == [1e-4, 3e-4, 1e-3]
    assert main(["run", "--preset", "finetune", "--dry-run", "--json", "--seeds", "5",
                 "--losses", "ce", "kl", "--finetune-layers", "all"]) == 0  # flags override it
    out = json.loads(capsys.readouterr().out)
    assert out["runs"] == 2 * 5 * 2 * 2 and out["sweep"]["finetune"]["layers"] == "all"


@pytest.mark.parametrize("argv, message", [
    (["run", "--preset", "finetune", "--dry-run", "--device", "tpu"], "unknown device 'tpu'"),
    (["run", "--preset", "finetune", "--dry-run", "--quick"], "exclude each other"),
    (["run", "--finetune", "--dry-run", "--config", "{cfg}"], "max_steps must be an integer"),
    (["reproduce", "--finetune", "--device", "gpu0"], "unknown device"),
    (["run", "--preset", "finetune", "--dry-run", "--finetune-layers", "7"], "layers must be 'all' or an integer in 1..6"),
    (["run", "--preset", "finetune", "--dry-run", "--finetune-layers", "top"], "must be 'all' or a number"),
    (["run", "--dry-run", "--finetune-layers", "2"], "needs --finetune"),
    (["run", "--preset", "finetune", "--dry-run", "--seeds", "10001"], "overlap the evaluation seeds"),
    (["run", "--finetune", "--dry-run", "--config", "{sched}"], "schedule must be"),
])
def test_finetune_usage_errors(argv, message, capsys, tmp_path):
    from w2sg.cli import main
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[finetune]\nmax_steps = -1\n")
    sched = tmp_path / "sched.toml"
    sched.write_text('[finetune]\nschedule = "cosine"\n')
    assert main([a.replace("{cfg}", str(cfg)).replace("{sched}", str(sched)) for a in argv]) == 2
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


# ----------------------------------------------------------------------------- top-K path
def _frozen_bottom_and_top_k(load, task, k):
    """The whole encoder with its embeddings and lower layers frozen, and the top-K scorer
    on cached states, both float64 with the same weights and the same head."""
    from experiments.finetune import StrongScorer
    whole = StrongScorer(task, "all", 16, dtype="float64")
    top = StrongScorer(task, k, 16, dtype="float64")
    n = len(whole.enc.encoder.layer)
    for p in list(whole.enc.embeddings.parameters()) + [
            p for layer in whole.enc.encoder.layer[:n - k] for p in layer.parameters()]:
        p.requires_grad_(False)
    top.head.load_state_dict(whole.head.state_dict())
    return whole, top


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_on_cached_states_equals_the_frozen_bottom_encoder(tiny_encoder, k):
    """Forward values and gradients of the top-K model on cached hidden states equal those of
    the whole encoder with the layers below L−K frozen (float64, 1e-10): logits of a batch of
    texts of different lengths (padding) and pairs, and the gradient of a loss with respect to
    every trainable parameter (top-K layers and head)."""
    from experiments.losses import make_loss
    task = toy_task("cls")
    whole, top = _frozen_bottom_and_top_k(tiny_encoder, task, k)
    tw = [p for p in whole.parameters()]
    tt = [p for p in top.parameters()]
    assert len(tw) == len(tt) and all(a.shape == b.shape for a, b in zip(tw, tt))
    rows = np.arange(0, 40, 3)
    assert len(set(whole.lengths[rows].tolist())) > 3  # padding to the longest matters
    for m in (whole, top):
        m.enc.eval()  # also with the model's dropout off: training mode below
    zw, zt = whole.score(rows), top.score(rows)
    assert zw.dtype == torch.float64 and torch.max(torch.abs(zw - zt)) < 1e-10
    assert torch.max(torch.abs(zw)) > 1e-3  # not a vacuous comparison
    pairs = np.stack([rows, rows[::-1]], axis=1)
    assert torch.max(torch.abs(whole.logits(pairs, True) - top.logits(pairs, True))) < 1e-10
    w = torch.as_tensor(np.linspace(0.1, 0.9, len(rows)), dtype=torch.float64)
    loss = make_loss("js")
    for m in (whole, top):
        m.enc.train()
        loss(m.score(rows), w, 0.0).backward()
    for a, b in zip(tw, tt):
        assert a.grad is not None and torch.max(torch.abs(a.grad)) > 0
        assert torch.max(torch.abs(a.grad - b.grad)) < 1e-10


def test_hidden_state_cache_is_named_by_its_inputs_and_checked_when_read(tiny_encoder, capsys):
    import experiments.finetune as FT_
    from experiments.embed import data_cache_dir, hidden_states_cached
    texts = ["a wonderful film", "dull", "it was a very bad day and a sad story"]
    load, ident = FT_.load_encoder, FT_.encoder_identity()
    hs = hidden_states_cached(texts, "unit", 12, 2, load, ident)
    files = sorted(data_cache_dir("hidden").glob("*.npz"))
    assert len(files) == 1 and hs.states.dtype == np.float32
    assert hs.states.shape == (int(hs.lengths.sum()), 32) and list(hs.lengths) == [5, 3, 12]
    # what layer 2 receives: the embeddings and the first two layers of the model, per text
    enc = load().eval()
    from experiments.embed import tokenize_cached
    ids, _ = tokenize_cached(texts, "unit", 12)
    with torch.no_grad():
        ref = enc(input_ids=torch.as_tensor(ids[1:2, :3], dtype=torch.long),
                  output_hidden_states=True).hidden_states[2][0].numpy()
    np.testing.assert_allclose(hs.states[5:8], ref, atol=1e-5)
    for other in (dict(max_length=16), dict(layer=1), dict(dtype="float64")):
        kw = {"max_length": 12, "layer": 2, "dtype": "float32", **other}
        hidden_states_cached(texts, "unit", kw["max_length"], kw["layer"], load, ident, kw["dtype"])
    hidden_states_cached(texts, "unit", 12, 2, load, "another-model")
    hidden_states_cached(texts[:2], "unit", 12, 2, load, ident)
    assert len(list(data_cache_dir("hidden").glob("*.npz"))) == 6  # each input: its own file
    # a changed file is not trusted: moved aside, named, recomputed
    data = bytearray(files[0].read_bytes())
    data[-200] ^= 0xFF
    files[0].write_bytes(bytes(data))
    capsys.readouterr()
    again = hidden_states_cached(texts, "unit", 12, 2, load, ident)
    assert "sha256 is not the stored one" in capsys.readouterr().err
    np.testing.assert_array_equal(again.states, hs.states)
    assert len(list(data_cache_dir("hidden").glob("*.corrupt-*"))) == 2
    side = files[0].with_suffix(".json")  # a sidecar describing other inputs
    side.write_text(side.read_text().replace('"layer": 2', '"layer": 3'))
    hidden_states_cached(texts, "unit", 12, 2, load, ident)
    assert "describes other inputs" in capsys.readouterr().err


def test_lr_schedule_warms_up_then_decays():
    from experiments.finetune import lr_factor
    f = [lr_factor(s, 20, "linear", 0.1) for s in range(20)]
    assert f[:3] == [0.5, 1.0, 18 / 19] and f[-1] == 1 / 19  # w = 2 warm-up steps
    assert all(a > b for a, b in zip(f[1:], f[2:]))  # strictly decreasing after warm-up
    assert [lr_factor(s, 7, "constant", 0.5) for s in range(7)] == [1.0] * 7
    with pytest.raises(ValueError, match="schedule"):
        lr_factor(0, 10, "cosine", 0.1)


# ----------------------------------------------------------------------------- lr tuning
TUNE = {"lr": [1e-9, 3e-3], "seeds": [10_000], "select": "weak", "noise": None}


@pytest.fixture
def toy_sweep(tiny_encoder, monkeypatch):
    """Runner and tuner on the toy task (any seed) with a weak model ~90 % right."""
    import experiments.data as D
    import experiments.embed as E
    import experiments.runner as R
    tasks = {}

    def build(spec, seed=0, pool=None, sizes=None):
        return tasks.setdefault(seed, toy_task("cls", seed=seed))
    monkeypatch.setattr(R, "_task", lambda config: build("toy", config["seed"]))
    monkeypatch.setattr(D, "build_task", build)

    feats = {}

    def features(task_, model, max_length=128, quiet=True):  # fixed per task, like a cache file
        if task_.seed not in feats:
            y_all = np.zeros(len(task_.texts))
            for items, y in task_.splits.values():
                y_all[items] = y
            rng = np.random.default_rng(1)
            feats[task_.seed] = (y_all[:, None] + rng.normal(scale=0.9, size=(len(y_all), 4))
                                 ).astype(np.float32)
        return feats[task_.seed]
    monkeypatch.setattr(E, "features", features)
    ft = {**FT, "layers": 2, "epochs": 1, "select": "last", "eval_every": 0, "tune": TUNE}
    return {**R.FINETUNE_SWEEP, "tasks": ["toy"], "weak": ["minilm-l3"], "losses": ["tv"],
            "noise": [0.0], "seeds": 2, "finetune": ft}


def test_tuned_runs_carry_the_lr_chosen_on_weak_labels_of_tuning_seeds(toy_sweep, monkeypatch,
                                                                      tmp_path, capsys):
    import experiments.finetune_tune as T
    import experiments.runner as R
    from w2sg.records import read_record
    _, runs = R.expand(toy_sweep)
    first = R.execute_run(runs[0], tmp_path)
    t = first.tuning
    assert t.grid == [{"lr": 1e-9}, {"lr": 3e-3}] and t.select == "weak" and t.tuning_seeds == [10_000]
    assert t.chosen == {"lr": 3e-3} and t.scores[1] > t.scores[0]  # lr 1e-9 learns nothing
    assert first.config["finetune"]["lr"] == FT["lr"]  # the config keeps the grid, not the choice
    assert read_record(R.run_path(runs[0], tmp_path)).tuning == t  # stored and read back
    cell = T.tuning_config(runs[0])
    assert "seed" not in cell and "lr" not in cell["finetune"]
    path = T.tuning_path(cell, tmp_path)
    assert T.check_tuning(cell, path) == dataclasses_asdict(t)
    # the next seed of the cell reuses the stored result (tuning is not run again)
    calls, tune_cell = [], T.tune_cell
    monkeypatch.setattr(T, "tune_cell", lambda *a, **k: calls.append(1) or tune_cell(*a, **k))
    assert R.execute_run(runs[1], tmp_path).tuning == t and calls == []
    # a changed result file is not trusted: named, moved aside, recomputed
    path.write_text(path.read_text().replace('"chosen": {\n   "lr": 0.003', '"chosen": {\n   "lr": 0.5'))
    capsys.readouterr()
    assert R.execute_run(runs[1], tmp_path).tuning == t and calls == [1]
    assert "invalid tuning result" in capsys.readouterr().err
    assert len(list(path.parent.glob("*.corrupt-*"))) == 1


def dataclasses_asdict(obj):
    import dataclasses
    return dataclasses.asdict(obj)


def test_weak_selection_never_reads_the_student_ground_truth(toy_sweep, monkeypatch):
    """Permuting the ground-truth labels of the student split changes no weak-selected score
    (tuning reads the weak labels only); oracle selection does read them."""
    import experiments.data as D
    import experiments.finetune_tune as T
    import experiments.runner as R
    _, runs = R.expand({**toy_sweep, "finetune": {**toy_sweep["finetune"],
                                                  "tune": {**TUNE, "lr": [3e-3, 1e-2]}}})
    cell = T.tuning_config(runs[0])
    base = T.tune_cell(cell)
    task = D.build_task("toy", 10_000)
    items, y = task.splits["student"]
    task.splits["student"] = (items, np.random.default_rng(0).permutation(1 - y))
    assert T.tune_cell(cell)["per_seed_scores"] == base["per_seed_scores"]
    oracle = T.tune_cell({**cell, "tune": {**cell["tune"], "select": "oracle"}})
    assert oracle["per_seed_scores"] != base["per_seed_scores"]


@pytest.mark.slow
def test_top_layer_of_the_real_minilm_on_cached_states(cache):
    """Smoke test with the pretrained MiniLM-L6: the cached states entering layer 5 are the
    model's own hidden state 5 (float32), and the top-layer scorer gives the whole encoder's
    score (dropout off) within float32 rounding."""
    from transformers import AutoTokenizer
    from experiments.embed import minilm_path
    from experiments.finetune import StrongScorer
    from experiments.data.tasks import Task
    texts = ["a wonderful, moving film", "dull", "I hated every single minute of it", "fine"]
    idx = np.arange(4)
    task = Task("unit", "cls", "unit", texts, {"student": (idx, idx % 2), "test": (idx, idx % 2)},
                0, {"val_frac": 0.5})
    top, whole = StrongScorer(task, 1, 16), StrongScorer(task, "all", 16)
    top.head.load_state_dict(whole.head.state_dict())
    tok = AutoTokenizer.from_pretrained(minilm_path())
    enc = tok(texts[2:3], truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        h5 = whole.enc(**enc, output_hidden_states=True).hidden_states[5][0].numpy()
        off = int(top.hidden.offsets[2])
        np.testing.assert_allclose(top.states[off:off + h5.shape[0]].numpy(), h5, atol=1e-5)
        whole.enc.eval(), top.enc.eval()
        np.testing.assert_allclose(top.score(idx).numpy(), whole.score(idx).numpy(), atol=1e-5)
    assert sum(p.numel() for p in top.parameters()) < sum(p.numel() for p in whole.parameters()) / 10
