"""The compiled-kernel cache is trusted like a compiler cache (issue 22): never code from a folder
or file another user can write, damaged libraries rebuilt (not loaded), failed and timed-out
builds remembered (transient ones only for a while), a hanging compiler bounded, and the
kernel a record names is the one that computed the loss.

Each case runs in a fresh process (the C kernels are cached per process) with its own
``$W2SG_KERNEL_CACHE``; the loss is compared with the reference path in that process.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fdiv_torch import c_kernel as ck
from fdiv_torch import kernel_cache

ROOT = Path(__file__).resolve().parents[2]
needs_c = pytest.mark.skipif(not ck.available(), reason=str(ck.unavailable_reason()))

#: Prints the C kernel's availability (and why not), then checks the default path's tv loss
#: against the reference path (0.395…: a planted kernel returned 0.0) and names the kernel.
_LOSS = """
import torch
from experiments.losses import fdiv_loss, fdiv_kernel_for
from fdiv_torch import c_kernel as ck
g = torch.Generator().manual_seed(0)
z = torch.randn(64, 5, generator=g)
w = torch.softmax(torch.randn(64, 5, generator=g) * 3, -1)
print(ck.available())
print(ck.unavailable_reason())
a, b = fdiv_loss(z, w, "tv"), fdiv_loss(z, w, "tv", fused=False)
assert abs(a.item() - b.item()) < 1e-6 and b.item() > 0.1, (a.item(), b.item())
print(fdiv_kernel_for("tv"))
"""


def _run(code: str, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=full, cwd=ROOT)


def _ok(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    return done.stdout.strip().splitlines()


_EVIL = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
    const char *p = getenv("W2SG_PLANTED");
    FILE *f = p ? fopen(p, "w") : NULL;
    if (f) { fputs("ran\n", f); fclose(f); }
}
int64_t w2sg_fdiv(void) { return -1; }
"""


def _plant(folder: Path, tmp: Path) -> None:
    """Replace every library under ``folder`` by one whose constructor writes
    ``$W2SG_PLANTED`` (and whose kernel computes nothing), with matching SHA-256 sidecars."""
    src = tmp / "evil.c"
    src.write_text(_EVIL)
    evil = tmp / "evil.so"
    subprocess.run([shutil.which("cc") or "gcc", "-shared", "-fPIC", str(src), "-o", str(evil)], check=True)
    libs = sorted(folder.glob("*.so"))
    assert libs
    for lib in libs:
        shutil.copyfile(evil, lib)
        (lib.parent / (lib.name + ".sha256")).write_text(kernel_cache.sha256_file(lib) + "\n")


@needs_c
@pytest.mark.parametrize("how", ["mode 0777", "owned by uid 65534"])
def test_a_planted_library_in_a_folder_others_can_write_is_never_loaded(tmp_path, how):
    """The cache folder (``$W2SG_KERNEL_CACHE/c``) is writable by others, or owned by another
    user, and holds a library under the probe's name: it is not loaded (its constructor does
    not run), the process builds in a private folder instead and the loss is right."""
    cache = tmp_path / "shared"
    _ok(_run("from fdiv_torch import c_kernel as ck; assert ck.available()", W2SG_KERNEL_CACHE=str(cache)))
    _plant(cache / "c", tmp_path)
    if how == "mode 0777":
        os.chmod(cache / "c", 0o777)
    else:
        os.chown(cache / "c", 65534, 65534)
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    flag = tmp_path / "planted-ran"
    lines = _ok(_run(_LOSS + "from fdiv_torch.kernel_cache import kernel_cache_dir; print(kernel_cache_dir('c'))",
                     W2SG_KERNEL_CACHE=str(cache), W2SG_PLANTED=str(flag), TMPDIR=str(tmpdir)))
    assert not flag.exists()
    assert lines[0] == "True" and lines[2] == "c"
    private = Path(lines[3])
    assert private == tmpdir / f"w2sg-c-{os.getuid()}" and (private.stat().st_mode & 0o777) == 0o700


@needs_c
def test_a_shared_temporary_folder_planted_by_someone_else_is_refused(tmp_path):
    """The preferred folder is not usable and ``$TMPDIR/w2sg-c-<uid>`` was created by someone
    else (mode 0777, a planted library): a fresh private folder is used, nothing planted runs."""
    cache = tmp_path / "shared"
    _ok(_run("from fdiv_torch import c_kernel as ck; assert ck.available()", W2SG_KERNEL_CACHE=str(cache)))
    _plant(cache / "c", tmp_path)
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    fallback = tmpdir / f"w2sg-c-{os.getuid()}"
    shutil.copytree(cache / "c", fallback)
    os.chmod(fallback, 0o777)
    os.chmod(cache / "c", 0o777)
    flag = tmp_path / "planted-ran"
    lines = _ok(_run(_LOSS + "from fdiv_torch.kernel_cache import kernel_cache_dir; print(kernel_cache_dir('c'))",
                     W2SG_KERNEL_CACHE=str(cache), W2SG_PLANTED=str(flag), TMPDIR=str(tmpdir)))
    assert not flag.exists()
    assert lines[0] == "True" and lines[2] == "c"
    private = Path(lines[3])
    assert private.parent == tmpdir and private != fallback and private.name.startswith("w2sg-c-")
    assert not private.exists()  # removed at exit


def test_trust_rules_of_folders_and_files(tmp_path):
    """Owned and private: trusted; writable by others or owned by another user: not, also
    for a folder above (unless sticky, like /tmp)."""
    ok = tmp_path / "ok"
    ok.mkdir(mode=0o755)
    assert kernel_cache.untrusted_dir_reason(ok) is None
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    assert "writable by group or others" in kernel_cache.untrusted_dir_reason(open_dir)
    inner = open_dir / "inner"
    inner.mkdir(mode=0o700)
    assert "above" in kernel_cache.untrusted_dir_reason(inner)
    os.chmod(open_dir, 0o1777)  # sticky: others cannot rename what is in it
    assert kernel_cache.untrusted_dir_reason(inner) is None
    os.chown(ok, 65534, 65534)
    assert "owned by uid 65534" in kernel_cache.untrusted_dir_reason(ok)
    f = tmp_path / "f"
    f.write_text("x")
    os.chmod(f, 0o644)
    assert kernel_cache.trusted_file(f)
    os.chmod(f, 0o666)
    assert not kernel_cache.trusted_file(f)
    os.chmod(f, 0o644)
    os.chown(f, 65534, 65534)
    assert not kernel_cache.trusted_file(f)


@needs_c
@pytest.mark.parametrize("damage", ["truncated", "zeroed", "no sidecar"])
def test_a_damaged_cached_library_is_rebuilt_not_loaded(tmp_path, damage):
    """A truncated library (was SIGBUS), one whose bytes were zeroed (was SIGSEGV), or one
    without its recorded SHA-256 (an older version's): rebuilt, and the loss is right."""
    env = {"W2SG_KERNEL_CACHE": str(tmp_path)}
    _ok(_run(_LOSS, **env))
    libs = sorted((tmp_path / "c").glob("*.so"))
    good = {lib: kernel_cache.sha256_file(lib) for lib in libs}
    for lib in libs:
        data = lib.read_bytes()
        if damage == "truncated":
            lib.write_bytes(data[: len(data) // 3])
        elif damage == "zeroed":
            lib.write_bytes(data[:4096] + bytes(len(data) - 4096))
        else:
            (lib.parent / (lib.name + ".sha256")).unlink()
    lines = _ok(_run(_LOSS, **env))
    assert lines[0] == "True" and lines[2] == "c"
    for lib in libs:
        assert kernel_cache.verified(lib)
        assert kernel_cache.sha256_file(lib) == good[lib]  # the same build again


def _hanging_compiler(tmp_path: Path) -> tuple[Path, Path]:
    script, pidfile = tmp_path / "hang-cc", tmp_path / "hang.pid"
    script.write_text(f"#!/bin/sh\nsleep 600 &\necho $! >> {pidfile}\nwait\n")
    script.chmod(0o755)
    return script, pidfile


def test_a_hanging_compiler_costs_one_process_its_deadline_once(tmp_path):
    """A compiler that never finishes: the first process waits ``$W2SG_CC_TIMEOUT`` seconds
    (2 here; 60 by default) in total — not per build — kills it (its children too), and
    computes the loss with the torch kernel; the next process does not wait at all."""
    script, pidfile = _hanging_compiler(tmp_path)
    env = {"W2SG_KERNEL_CACHE": str(tmp_path / "cache"), "W2SG_CC": str(script), "W2SG_CC_TIMEOUT": "2"}
    t0 = time.monotonic()
    lines = _ok(_run(_LOSS, **env))
    first = time.monotonic() - t0
    assert lines[0] == "False" and "did not finish within 2 s" in lines[1] and lines[2] == "torch"
    assert len(pidfile.read_text().split()) == 1  # one compiler started, not one per flag set
    for pid in pidfile.read_text().split():
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    t0 = time.monotonic()
    lines = _ok(_run(_LOSS, **env))
    second = time.monotonic() - t0
    assert lines[0] == "False" and "remembered" in lines[1] and lines[2] == "torch"
    assert len(pidfile.read_text().split()) == 1  # the second process started no compiler
    assert first < 60 and second < first + 30  # (generous: a loaded machine imports slowly)


def _marker_names(tmp_path: Path) -> list[Path]:
    _ok(_run("from fdiv_torch import c_kernel as ck; assert ck.available()", W2SG_KERNEL_CACHE=str(tmp_path)))
    libs = sorted((tmp_path / "c").glob("*.so"))
    for lib in libs:
        lib.unlink()
        (lib.parent / (lib.name + ".sha256")).unlink()
    return [lib.with_suffix(".failed") for lib in libs]


@needs_c
def test_failure_markers_are_obeyed_until_they_expire(tmp_path):
    """A remembered failure (a full disk, say) is not retried while it is valid; once expired
    it is removed and the kernel built; a marker of an older version (plain text) counts."""
    markers = _marker_names(tmp_path)
    code = "from fdiv_torch import c_kernel as ck; print(ck.available(), ck.vector_math())"
    for m in markers:
        m.write_text(json.dumps({"reason": "OSError: [Errno 28] No space left on device",
                                 "until": time.time() + 600}))
    valid = _ok(_run(code, W2SG_KERNEL_CACHE=str(tmp_path)))
    assert all(m.exists() and not m.with_suffix(".so").exists() for m in markers)
    assert valid == ["True False"]  # built without the remembered flag set: no vector math
    for m in markers:
        m.write_text(json.dumps({"reason": "OSError: [Errno 28] No space left on device",
                                 "until": time.time() - 1}))
    assert _ok(_run(code, W2SG_KERNEL_CACHE=str(tmp_path))) == [f"True {ck.vector_math()}"]
    assert all(not m.exists() and kernel_cache.verified(m.with_suffix(".so")) for m in markers)
    assert kernel_cache.remembered_failure(tmp_path / "none.failed") is None
    legacy = tmp_path / "legacy.failed"
    legacy.write_text("error: unrecognized command-line option\n")
    assert kernel_cache.remembered_failure(legacy) == "error: unrecognized command-line option"
    os.utime(legacy, (time.time() - 2 * 86400,) * 2)
    assert kernel_cache.remembered_failure(legacy) is None and not legacy.exists()


def test_a_full_disk_is_remembered_only_for_a_while(tmp_path):
    """A compiler that fails for lack of space: the torch kernel is used, and the marker
    expires after minutes (a compile error is remembered for a day)."""
    from fdiv_torch import c_build
    full = tmp_path / "full-cc"
    full.write_text("#!/bin/sh\necho 'cc1: fatal error: kernel.so: No space left on device' >&2\nexit 1\n")
    full.chmod(0o755)
    lines = _ok(_run(_LOSS, W2SG_KERNEL_CACHE=str(tmp_path / "cache"), W2SG_CC=str(full)))
    assert lines[0] == "False" and "No space left on device" in lines[1] and lines[2] == "torch"
    markers = list((tmp_path / "cache" / "c").glob("*.failed"))
    assert markers
    for m in markers:
        left = json.loads(m.read_text())["until"] - time.time()
        assert 0 < left <= c_build.TRANSIENT_TTL_S < 3600


@needs_c
def test_cache_errors_fall_back_and_are_named(monkeypatch):
    """An ``OSError`` while building (a full cache disk) is no traceback from ``fdiv_loss``:
    the torch kernel computes the loss, and ``fdiv_kernel_for`` names it."""
    from experiments.losses import fdiv_kernel_for, fdiv_loss
    from fdiv_torch import c_build

    def full(*args, **kw):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(ck, "available", lambda: True)
    monkeypatch.setattr(ck, "vector_math", lambda: True)
    monkeypatch.setattr(c_build, "library", full)
    spec = "(t-1)**2/(t+2)"  # a generator no other test builds (f'' = 18/(t+2)^3 > 0)
    z = torch.randn(8, 3)
    w = torch.softmax(torch.randn(8, 3), -1)
    assert torch.allclose(fdiv_loss(z, w, spec), fdiv_loss(z, w, spec, fused="torch"))
    assert fdiv_kernel_for(spec) == "torch"
    with pytest.raises(ValueError, match="fused='c': .*No space left on device"):
        fdiv_loss(z, w, spec, fused="c")


def test_the_kernel_named_is_the_kernel_that_ran(monkeypatch):
    """A generator whose C kernel cannot be had (the probe builds, this one does not): the
    record's kernel is "torch", as the loss's."""
    from experiments.losses import fdiv_kernel_for, fdiv_loss
    from fdiv_torch.printing import Unsupported

    def refuse(*args, **kw):
        raise Unsupported("does not load (test)")
    monkeypatch.setattr(ck, "available", lambda: True)
    monkeypatch.setattr(ck, "vector_math", lambda: True)
    monkeypatch.setattr(ck, "fdiv_kernel_c", refuse)
    assert fdiv_kernel_for("js") == "torch" and fdiv_kernel_for("js", "float64") == "torch"
    z = torch.randn(8, 3)
    w = torch.softmax(torch.randn(8, 3), -1)
    assert torch.equal(fdiv_loss(z, w, "js"), fdiv_loss(z, w, "js", fused="torch"))
    with pytest.raises(ValueError, match="fused='c': generator .* has no C kernel .does not load"):
        fdiv_loss(z, w, "js", fused="c")


@needs_c
def test_compiler_arguments_in_w2sg_cc(tmp_path):
    """``W2SG_CC='cc -O0'`` is a command line (split, no shell): it builds; a missing compiler
    is named, not reported as "no C compiler (set $W2SG_CC)"."""
    cc = shutil.which("cc") or shutil.which("gcc")
    code = "from fdiv_torch import c_kernel as ck; print(ck.available()); print(ck.unavailable_reason())"
    assert _ok(_run(code, W2SG_KERNEL_CACHE=str(tmp_path), W2SG_CC=f"{cc} -O0"))[0] == "True"
    lines = _ok(_run(code, W2SG_KERNEL_CACHE=str(tmp_path), W2SG_CC="no-such-cc -O0"))
    assert lines[0] == "False" and "W2SG_CC='no-such-cc -O0': 'no-such-cc' is not an executable" in lines[1]
    lines = _ok(_run(code, W2SG_KERNEL_CACHE=str(tmp_path), W2SG_CC="cc 'unclosed"))
    assert lines[0] == "False" and "is not a command line" in lines[1]
