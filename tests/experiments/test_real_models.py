"""Real MiniLM encoders on a few dozen texts, end to end (slow-ish but CI-sized)."""
import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_embedding_cache_keys(cache):
    from experiments.embed import cache_dir, embed_texts
    texts = ["a wonderful, moving film", "dull and lifeless", "I hated every minute"]
    a = embed_texts(texts, "minilm-l6", "unit")
    assert a.shape == (3, 7 * 384) and np.isfinite(a).all()
    files = sorted(p.name for p in cache_dir().glob("*.npy"))
    assert len(files) == 1
    b = embed_texts(texts, "minilm-l6-layer0", "unit")  # sliced from the same pass
    np.testing.assert_allclose(b, a[:, :384])
    assert sorted(p.name for p in cache_dir().glob("*.npy")) == files
    embed_texts(texts[:2] + ["changed"], "minilm-l6", "unit")      # other texts: new file
    embed_texts(texts, "minilm-l6", "unit", max_length=32)         # other length: new file
    embed_texts(texts, "minilm-l6", "other-dataset")               # other dataset: new file
    assert len(list(cache_dir().glob("*.npy"))) == 4
    c = embed_texts(texts, "minilm-l3", "unit")
    assert c.shape == (3, 384) and np.isfinite(c).all()
    # sentence similarity is sensible for the pretrained strong encoder
    last = a[:, -384:] / np.linalg.norm(a[:, -384:], axis=1, keepdims=True)
    assert last[1] @ last[2] > last[0] @ last[2]
    with pytest.raises(ValueError, match="valid"):
        embed_texts(texts, "bert", "unit")


def test_end_to_end_real_minilm(cache, tmp_path, capsys):
    """`w2sg run` on ~120 fortunes with the real MiniLM encoders and both weak models."""
    from w2sg.cli import main
    cfg = tmp_path / "small.toml"
    cfg.write_text(
        'tasks = ["fortunes_pairs"]\nweak = ["minilm-l6-layer0", "minilm-l3"]\n'
        'losses = ["ce", "reverse_kl"]\nnoise = [0.0, 0.3]\nseeds = 1\npool = 240\nmax_length = 48\n'
        '[sizes]\nweak_gt = 30\ntest = 40\n[train]\nsteps = 60\n')
    out = tmp_path / "results"
    assert main(["run", "--config", str(cfg), "--out", str(out), "--workers", "1", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["info"]["executed"] == 2 + 8
    rows = payload["summary"]
    assert len(rows) == 8
    recs = [json.loads(p.read_text()) for p in (out / "runs").rglob("*.json")]
    runs = [r for r in recs if r["kind"] == "run"]
    refs = [r for r in recs if r["kind"] == "reference"]
    assert len(runs) == 8 and len(refs) == 2
    n_test = runs[0]["splits"]["sizes"]["test"]
    for rec in runs:  # accuracies are counts over the test split: multiples of 1/n_test
        for acc in (rec["metrics"]["acc"], rec["reference"]["weak"]["acc"], rec["reference"]["ceiling"]["acc"]):
            assert acc * n_test == pytest.approx(round(acc * n_test), abs=1e-9)
    for r in rows:  # one seed: the summary is exactly the records' values
        rec = next(x for x in runs if (x["weak"], x["loss"], x["noise"]) == (r["weak"], r["loss"], r["noise"]))
        assert r["w2s_acc"] == rec["metrics"]["acc"] and r["weak_acc"] == rec["reference"]["weak"]["acc"]
    # the strong ceiling on real MiniLM features beats chance on harmlessness pairs
    assert np.mean([r["baselines"]["ceiling"]["acc"] for r in refs]) > 0.6
    assert all("student" in r["ceiling_split"] for r in runs)
    # resume: nothing to do the second time
    assert main(["run", "--config", str(cfg), "--out", str(out), "--workers", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["info"]["executed"] == 0


def test_finetune_flag_small(cache, tmp_path, capsys):
    """--finetune trains the whole MiniLM (student and ceiling) on a tiny split."""
    from w2sg.cli import main
    cfg = tmp_path / "ft.toml"
    cfg.write_text('tasks = ["fortunes_pairs"]\nweak = ["minilm-l6-layer0"]\nlosses = ["hellinger"]\n'
                   'noise = [0.0]\nseeds = 1\npool = 80\nmax_length = 24\n'
                   '[sizes]\nweak_gt = 10\ntest = 10\n[finetune]\nmax_length = 24\nbatch_size = 8\n')
    out = tmp_path / "res"
    assert main(["run", "--config", str(cfg), "--out", str(out), "--workers", "1", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["info"]["executed"] == 2
    rec = [json.loads(p.read_text()) for p in (out / "runs").rglob("*.json")
           if "reference" not in p.parts][0]
    assert rec["config"]["finetune"]["epochs"] == 1
    n_test = rec["splits"]["sizes"]["test"]
    assert rec["metrics"]["acc"] * n_test == pytest.approx(round(rec["metrics"]["acc"] * n_test), abs=1e-9)
