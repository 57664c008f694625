"""Optional full fine-tuning of the strong encoder (small runs only).

Instead of a head on frozen features, the whole MiniLM-L6 plus a linear head on its
mean-pooled last layer is trained (AdamW, ``epochs`` passes, minibatches) on the same
targets with the same loss; pair tasks score each text and use ``r(A) − r(B)``.
Selection: the epoch-end checkpoint with the best validation-slice accuracy.
About 28 examples/s were measured on 2 CPU cores at max_length 64 (docs/DATA.md).
"""
from __future__ import annotations

import copy

import numpy as np

__all__ = ["finetune_predict"]


def finetune_predict(task, targets: np.ndarray, val_labels: np.ndarray, loss, seed: int,
                     epochs: int = 1, lr: float = 3e-5, batch_size: int = 16, max_length: int = 64,
                     device: str = "cpu") -> np.ndarray:
    """Fine-tune on the student split's train part (``targets``: P(y=1) per item) and return
    test-split ``P(y=1)``.  ``val_labels``: labels of the validation slice used for selection."""
    import torch
    from transformers import AutoModel, AutoTokenizer
    from .embed import minilm_path
    from .data.tasks import split_student
    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(minilm_path())
    enc = AutoModel.from_pretrained(minilm_path()).to(device).train()
    head = torch.nn.Linear(enc.config.hidden_size, 1, bias=task.kind == "cls").to(device)
    opt = torch.optim.AdamW(list(enc.parameters()) + list(head.parameters()), lr=lr)
    items_s, _ = task.splits["student"]
    tr, va = split_student(len(items_s), task.info["val_frac"])

    def score(idx):
        texts = [task.texts[i] for i in idx]
        b = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
        h = enc(**b).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).float()
        return head((h * m).sum(1) / m.sum(1).clamp(min=1e-9)).squeeze(-1)

    def logits(items):
        if task.kind == "pair":
            return score(items[:, 0]) - score(items[:, 1])
        return score(items)

    def predict(items):
        enc.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(items), 64):
                out.append(torch.sigmoid(logits(items[i:i + 64])).cpu().numpy())
        enc.train()
        return np.concatenate(out) if out else np.zeros(0)

    rng = np.random.default_rng(seed)
    targets = np.asarray(targets, dtype=np.float32)
    steps_total = epochs * int(np.ceil(len(tr) / batch_size))
    step, best = 0, (-1.0, None)
    for _ in range(epochs):
        order = rng.permutation(len(tr))
        for i in range(0, len(order), batch_size):
            sel = order[i:i + batch_size]
            z = logits(items_s[tr[sel]])
            obj = loss(z, torch.as_tensor(targets[sel], device=device), step / max(1, steps_total))
            opt.zero_grad()
            obj.backward()
            opt.step()
            step += 1
        acc = float(np.mean((predict(items_s[va]) > 0.5) == (np.asarray(val_labels) > 0.5)))
        if acc >= best[0]:
            best = (acc, (copy.deepcopy(enc.state_dict()), copy.deepcopy(head.state_dict())))
    enc.load_state_dict(best[1][0])
    head.load_state_dict(best[1][1])
    return predict(task.splits["test"][0])
