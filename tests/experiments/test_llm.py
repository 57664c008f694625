"""The GPT-2 / HH-RLHF path on tiny local stand-ins (no downloads)."""
import json

import numpy as np
import pytest


@pytest.fixture
def tiny_lm(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast
    words = ("please help me you are kind thank no that is rude stupid idiot go away "
             "I will hurt harm sure here how can assist hate the a to").split()
    corpus = [" ".join(words[i:i + 6]) for i in range(len(words))] * 3
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[EOS]"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[EOS]")
    folders = []
    for name, layers, width in (("weak", 1, 16), ("strong", 2, 32)):
        folder = tmp_path / name
        cfg = GPT2Config(vocab_size=fast.vocab_size, n_positions=64, n_embd=width, n_layer=layers,
                         n_head=2, eos_token_id=1, bos_token_id=1)
        GPT2Model(cfg).save_pretrained(folder)
        fast.save_pretrained(folder)
        folders.append(str(folder))
    return folders


@pytest.fixture
def pairs_jsonl(tmp_path):
    rng = np.random.default_rng(0)
    good = ["sure here is how I can help", "thank you you are kind", "how can I assist",
            "please help me thank you"]
    bad = ["go away idiot", "that is stupid", "I will hurt you", "I hate you go away"]
    path = tmp_path / "pairs.jsonl"
    with open(path, "w") as fh:
        for i in range(60):
            fh.write(json.dumps({"chosen": f"human: {good[rng.integers(4)]}",
                                 "rejected": f"human: {bad[rng.integers(4)]}"}) + "\n")
    return path


def test_jsonl_and_pair_task(pairs_jsonl):
    from experiments.llm import load_pairs, pair_task
    pairs = load_pairs(str(pairs_jsonl))
    assert len(pairs) == 60 and all(isinstance(c, str) for c, _ in pairs)
    task = pair_task(pairs, seed=0, n_weak=10, n_test=15)
    items, y = task.splits["test"]
    for (a, b), lab in zip(items, y):
        chosen = a if lab == 1 else b
        assert chosen % 2 == 0  # chosen texts sit at even positions
    all_items = [set(task.splits[s][0].ravel()) for s in task.splits]
    assert not (all_items[0] & all_items[1]) and not (all_items[1] & all_items[2])


def test_missing_dataset_is_a_clear_error(tmp_path):
    from experiments.llm import load_pairs
    try:
        import datasets  # noqa: F401
        pytest.skip("datasets installed; the hub would be contacted")
    except ModuleNotFoundError:
        pass
    with pytest.raises(ValueError, match="datasets"):
        load_pairs("hh-rlhf")


def test_tiny_gpt2_features_and_sweep(tiny_lm, pairs_jsonl, tmp_path):
    from experiments.llm import lm_features, load_lm, run_llm_sweep
    model, tok = load_lm(tiny_lm[1], "cpu")
    X = lm_features(model, tok, ["please help", "go away idiot now please"], max_length=16)
    assert X.shape == (2, 32) and np.isfinite(X).all()
    recs = run_llm_sweep(tiny_lm[0], tiny_lm[1], str(pairs_jsonl), ["ce", "hellinger"], [0.0, 0.2],
                         seeds=1, root=tmp_path / "out", device="cpu", n_weak=12, n_test=16,
                         max_length=16, train={"steps": 40})
    assert len(recs) == 4
    for r in recs:  # accuracy is a count over the 16 test pairs
        assert r.config["device"] == "cpu"
        assert r.metrics.acc * 16 == pytest.approx(round(r.metrics.acc * 16), abs=1e-9)
    files = list((tmp_path / "out" / "runs" / "llm").rglob("*.json"))
    assert len(files) == 4
    from w2sg.pgr import pgr
    from w2sg.records import LlmRunRecord, read_record
    stored = sorted((read_record(f, LlmRunRecord) for f in files), key=lambda r: (r.loss, r.noise))
    assert stored == sorted(recs, key=lambda r: (r.loss, r.noise))  # what was returned was written
    for r in stored:  # the stored PGR is the formula applied to the stored accuracies
        want = pgr(r.metrics.acc, r.reference.weak.acc, r.reference.ceiling.acc)
        assert r.metrics.pgr == pytest.approx(want) if r.metrics.pgr is not None else want != want
    again = run_llm_sweep(tiny_lm[0], tiny_lm[1], str(pairs_jsonl), ["ce", "hellinger"], [0.0, 0.2],
                          seeds=1, root=tmp_path / "out", device="cpu", n_weak=12, n_test=16,
                          max_length=16, train={"steps": 40})
    assert again == []  # resumed: nothing redone


def test_cli_llm_path(tiny_lm, pairs_jsonl, tmp_path, capsys):
    from w2sg.cli import main
    rc = main(["run", "--llm", tiny_lm[0], tiny_lm[1], "--llm-data", str(pairs_jsonl), "--device", "cpu",
               "--losses", "js", "--noise", "0", "--seeds", "1", "--out", str(tmp_path / "o"), "--json"])
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and rows[0]["loss"] == "js"


def test_cuda_request_without_cuda():
    import torch
    from experiments.llm import resolve_device
    if torch.cuda.is_available():
        assert resolve_device("cuda") == "cuda"
    else:
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")
    assert resolve_device("cpu") == "cpu"
