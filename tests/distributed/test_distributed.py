"""Data-parallel search and training on torch.distributed: 2 CPU processes (gloo) against one process.

The two-process tests launch this file as a script, once per rank, with the environment ``torchrun``
sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), so the workers
initialise through :func:`gasgnn.distributed.init_distributed` exactly as under ``torchrun``. The
worker scenarios are at the end of the file.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from gasgnn import SearchSpace, random_genotype
from gasgnn import distributed as dist
from gasgnn.data import build_dataset, eval_transform, split_search, train_transform
from gasgnn.latency import LatencyTable
from gasgnn.search import SearchConfig, Searcher
from gasgnn.train import TrainConfig, Trainer

WORLD = 2
PER_RANK_BATCH = 2  # the single-process reference takes WORLD * PER_RANK_BATCH images per step
SPACE = dict(num_cells=3, num_nodes=2, reduction_cells=(1,), channels=4, input_size=(32, 32), num_classes=9)


# --- shared by the workers and the single-process reference ----------------------------------------------
def _space() -> SearchSpace:
    return SearchSpace(**SPACE)


def _table(space: SearchSpace) -> LatencyTable:
    # Made-up, distinct numbers (no measuring): every process gets the same table.
    table = LatencyTable()
    for i, key in enumerate(table.required_keys(space)):
        table[key] = 0.01 * (i + 1) + 0.001 * (i % 7)
    return table


def _search_config(**kw) -> SearchConfig:
    base = dict(epochs=1, warmup_epochs=0, batch_size=PER_RANK_BATCH, steps_per_epoch=2, latency_weight=0.1,
                deterministic=True, check_sync_every=1)
    return SearchConfig(**{**base, **kw})


def _search_loaders(world: int, rank: int, batch: int):
    """Un-augmented halves, each rank taking its stride of one seeded permutation: the union of the
    ranks' i-th batches of ``batch`` is the i-th batch of ``world * batch`` of a single process."""
    ds = build_dataset("synthetic", split="train", transform=eval_transform(), num_images=16, size=(32, 32))
    w_half, a_half = split_search(ds, seed=0)

    def factory(half, seed):
        def build(epoch):
            s = DistributedSampler(half, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
            s.set_epoch(epoch)
            return DataLoader(half, batch_size=batch, sampler=s, drop_last=True)

        return build

    def val(epoch):
        return DataLoader(a_half, batch_size=batch, sampler=dist.ShardSampler(a_half, world, rank))

    return factory(w_half, 0), factory(a_half, 1), val


def _train_data():
    tr = build_dataset("synthetic", split="train", transform=train_transform((32, 32), (0.75, 1.25)),
                       num_images=8, size=(32, 40))
    va = build_dataset("synthetic", split="val", transform=eval_transform(), num_images=3, size=(32, 40))
    return tr, va


def _train_config(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=2, lr=0.05, warmup_iters=1, crop_size=(32, 32), workers=0, progress=False,
                head_channels=8, deterministic=True, device="cpu", sync_bn=True)
    base.update(kw)
    return TrainConfig(**base)


# --- launching ---------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


def _launch(scenario: str, out: Path) -> list[subprocess.Popen]:
    port = str(_free_port())
    return [
        subprocess.Popen(
            [sys.executable, __file__, scenario, str(out)],
            env=_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, WORLD_SIZE=str(WORLD), RANK=str(r),
                     LOCAL_RANK=str(r)),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for r in range(WORLD)
    ]


def _wait(procs: list[subprocess.Popen], timeout: float = 120) -> None:
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    failed = [(r, p.returncode, o) for r, (p, o) in enumerate(zip(procs, outs)) if p.returncode != 0]
    assert not failed, "\n".join(f"rank {r} exited {rc}:\n{o}" for r, rc, o in failed)


@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    """Two ranks search 2 steps (SyncBN) while this process runs the single-process reference."""
    out = tmp_path_factory.mktemp("dist_search")
    procs = _launch("search", out)
    torch.set_num_threads(1)
    space = _space()
    wl, al, vl = _search_loaders(1, 0, WORLD * PER_RANK_BATCH)
    single = Searcher(space, _search_config(), wl, al, vl, table=_table(space), run_dir=None, progress=False)
    alpha0 = single.net.alpha.detach().clone()
    single.run()
    _wait(procs)
    ranks = [torch.load(out / f"search{r}.pt", weights_only=False) for r in range(WORLD)]
    return {"out": out, "single": single, "alpha0": alpha0, "ranks": ranks}


# --- single process: everything is a no-op ------------------------------------------------------------------
def test_single_process_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not dist.launched() and not dist.is_distributed()
    assert dist.world_size() == 1 and dist.rank() == 0 and dist.is_main()
    assert dist.init_distributed() is False
    with dist.session() as on:
        assert on is False
    dist.barrier()
    p = nn.Parameter(torch.randn(3))
    p.grad = torch.tensor([1.0, 2.0, 3.0])
    dist.all_reduce_grads([p])
    assert torch.equal(p.grad, torch.tensor([1.0, 2.0, 3.0]))
    dist.check_identical({"p": p})
    dist.check_same(3, "epoch")
    assert dist.reduce_scalar(torch.tensor(2.5), "sum") == 2.5 and dist.broadcast_object({"a": 1}) == {"a": 1}
    assert dist.train_sampler(range(5), 0, 0) is None and dist.shard_sampler(range(5)) is None
    state = torch.get_rng_state()
    dist.seed_rank(0, 3)
    assert torch.equal(torch.get_rng_state(), state)
    x = torch.randn(4)
    assert dist.all_reduce_sum(x) is x
    assert str(dist.resolve_device("cpu")) == "cpu"
    assert dist.default_backend() == ("nccl" if torch.cuda.is_available() else "gloo")


def test_launched_reads_world_size(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not dist.launched()
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert dist.launched()


def test_nccl_group_is_bound_to_the_local_gpu(monkeypatch):
    # NCCL groups get device_id (this rank's GPU), so NCCL does not guess the device at the first collective.
    from gasgnn.distributed import group

    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(group.tdist, "is_initialized", lambda: False)
    monkeypatch.setattr(group.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(group.torch.cuda, "set_device", lambda d: seen.setdefault("set_device", d))
    monkeypatch.setattr(group.tdist, "init_process_group", lambda *a, **kw: seen.update(args=a, kw=kw))
    assert dist.init_distributed("nccl")
    assert seen["kw"]["device_id"] == torch.device("cuda", 1) == seen["set_device"]
    assert dist.init_distributed("gloo") and seen["kw"]["device_id"] is None


def test_shard_sampler_partitions_without_padding():
    shards = [list(dist.ShardSampler(range(7), 3, r)) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert [len(dist.ShardSampler(range(7), 3, r)) for r in range(3)] == [3, 2, 2]


def test_sync_batchnorm_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm2d(4, affine=False)))
    ref = nn.Sequential(*[m for m in net])  # same modules before conversion
    x = torch.randn(2, 3, 8, 8)
    before = ref(x).detach()
    conv = dist.convert_sync_batchnorm(net, "cpu")
    assert isinstance(conv[1], dist.SyncBatchNorm) and isinstance(conv[2][0], dist.SyncBatchNorm)
    assert conv[1].weight is ref[1].weight  # parameters are kept, not copied
    assert not conv[2][0].affine
    torch.testing.assert_close(conv(x), before, rtol=0, atol=1e-6)
    conv.eval()
    assert conv(x).shape == (2, 4, 6, 6)


def test_config_options():
    assert SearchConfig().check_sync_every == 50 and not SearchConfig().sync_bn
    with pytest.raises(ValueError, match="check_sync_every"):
        SearchConfig(check_sync_every=-1)
    assert not TrainConfig().sync_bn


def test_cli_flags_in_help(capsys):
    from gasgnn.cli import main

    for cmd in ("search", "train"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = capsys.readouterr().out
        assert "--sync-bn" in text and "--dist-backend" in text
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    assert "--check-sync-every" in capsys.readouterr().out


# --- two processes -----------------------------------------------------------------------------------
def test_search_alpha_identical_on_both_ranks(search_run):
    r0, r1 = search_run["ranks"]
    assert not torch.equal(r0["alpha"], search_run["alpha0"])  # alpha did move
    assert torch.equal(r0["alpha"], r1["alpha"])
    for k in r0["guide"]:
        assert torch.equal(r0["guide"][k], r1["guide"][k]), k
    for k in r0["net"]:  # weights and (synchronised) batch-norm statistics
        assert torch.equal(r0["net"][k], r1["net"][k]), k
    assert torch.equal(r0["alpha_nosync"], r1["alpha_nosync"])  # identical without SyncBN as well
    rows = [[{k: v for k, v in row.items() if k != "seconds"} for row in res["rows"]] for res in (r0, r1)]
    assert rows[0] == rows[1]  # the same logged losses and (all-reduced) mIoU


def test_search_matches_single_process_with_global_batch(search_run):
    single, (r0, _) = search_run["single"], search_run["ranks"]
    moved = (single.net.alpha.detach() - search_run["alpha0"]).abs().max()
    diff = (r0["alpha"] - single.net.alpha.detach()).abs().max()
    # Adam moves alpha by up to a_lr (3e-4) per step; the two runs agree to float rounding (observed:
    # ~1e-9 with alpha moving 6e-4; without SyncBN the ranks' own batch statistics make it ~1e-3).
    assert moved > 1e-4
    assert diff < 1e-6, f"max |alpha(2 ranks) - alpha(1 process)| = {diff:.3g} (alpha moved {moved:.3g})"
    for k, v in single.guide.state_dict().items():
        torch.testing.assert_close(r0["guide"][k], v, rtol=0, atol=1e-6)
    for k, v in single.net.state_dict().items():
        torch.testing.assert_close(r0["net"][k], v, rtol=1e-4, atol=1e-5, msg=k)
    # Losses and mIoU: the mean over the ranks' shards equals the single process's.
    for a, b in zip(r0["rows"], single.rows):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-5 and abs(a["val_miou"] - b["val_miou"]) < 1e-6


def test_search_sync_batchnorm_matches_global_batch(search_run):
    for r, res in enumerate(search_run["ranks"]):
        torch.testing.assert_close(res["bn_out"], res["bn_ref"], rtol=0, atol=1e-5, msg=f"rank {r} output")
        torch.testing.assert_close(res["bn_grad"], res["bn_ref_grad"], rtol=0, atol=1e-5, msg=f"rank {r} grad")
        torch.testing.assert_close(res["bn_running"], res["bn_ref_running"], rtol=0, atol=1e-6)


def test_search_drift_is_detected_on_every_rank(search_run):
    for r in range(WORLD):
        msg = (search_run["out"] / f"drift{r}.txt").read_text()
        assert "architecture parameters drifted between ranks" in msg and "alpha (max |difference| 0.001)" in msg


def test_search_only_rank0_writes(search_run):
    out = search_run["out"]
    for f in ("config.json", "metrics.csv", "checkpoint.pt", "genotype.json", "alpha_history.pt",
              "latency_table.json", "summary.json"):
        assert (out / "run0" / f).is_file(), f
    assert not (out / "run1").exists()


def test_search_resume_equals_uninterrupted(search_run):
    assert all(res["resume_equal"] for res in search_run["ranks"])
    assert (search_run["out"] / "cut" / "checkpoint.pt").is_file()


def test_search_loaders_shard_over_ranks(search_run):
    r0, r1 = search_run["ranks"]
    for half in ("weights", "arch"):
        a, b = r0["loaders"][half], r1["loaders"][half]
        assert r0["loaders"]["sampler"] == "DistributedSampler"
        assert len(a) == len(b) == 4 and not set(a) & set(b)  # 8 images per half, 4 per rank
    a, b = r0["loaders"]["val"], r1["loaders"]["val"]
    assert sorted(a + b) == list(range(8)) and len(a) == len(b) == 4


def test_trainer_two_processes_resume(tmp_path):
    _wait(_launch("train", tmp_path))
    r0, r1 = (torch.load(tmp_path / f"train{r}.pt", weights_only=False) for r in range(WORLD))
    for k in r0["full"]:
        assert torch.equal(r0["full"][k], r1["full"][k]), k  # DDP keeps the ranks identical
        assert torch.equal(r0["full"][k], r0["resumed"][k]), k  # kill + resume == uninterrupted
    assert r0["history"] == r1["history"] and len(r0["history"]) == 2
    assert r0["iterations"] == 4  # 8 images / 2 ranks / batch 2, per epoch
    for run in ("full", "cut"):
        for f in ("last.pt", "best.pt", "metrics.csv", "curves.png", "config.json"):
            assert (tmp_path / run / f).is_file(), (run, f)
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=False)["world_size"] == WORLD


def test_cli_search_under_torchrun(tmp_path):
    space = _space()
    _table(space).save(tmp_path / "table.json")
    out = tmp_path / "gas"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}",
           "-m", "gasgnn", "search", "--data", "synthetic", "--data-arg", "num_images=8", "--num-cells", "3",
           "--num-nodes", "2", "--reduction-cells", "1", "--channels", "4", "--input-size", "32", "32",
           "--num-classes", "9", "--epochs", "1", "--warmup-epochs", "0", "--steps-per-epoch", "1",
           "--batch-size", "1", "--latency-table", str(tmp_path / "table.json"), "--device", "cpu",
           "--out", str(out), "--no-figures", "--json", "--dist-backend", "gloo", "--sync-bn"]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads(res.stdout)  # printed once, by rank 0
    assert summary["predicted_latency_ms"] > 0 and (out / "checkpoint.pt").is_file()
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["distributed"]["world_size"] == WORLD and cfg["search"]["sync_bn"] is True


# --- the worker scenarios (run as `python test_distributed.py SCENARIO OUT` per rank) -----------------------
def _worker_search(out: Path) -> None:
    from gasgnn.data import search_loaders

    r, space = dist.rank(), _space()
    wl, al, vl = _search_loaders(WORLD, r, PER_RANK_BATCH)
    res: dict = {}
    s = Searcher(space, _search_config(sync_bn=True), wl, al, vl, table=_table(space), run_dir=out / f"run{r}",
                 progress=False)
    s.run()
    res.update(alpha=s.net.alpha.detach().clone(), guide={k: v.clone() for k, v in s.guide.state_dict().items()},
               net={k: v.clone() for k, v in s.net.state_dict().items()}, rows=s.rows)
    # A deliberately perturbed alpha on rank 1 is caught on both ranks.
    if r == 1:
        with torch.no_grad():
            s.net.alpha[0, 0] += 1e-3
    try:
        s.check_sync()
        (out / f"drift{r}.txt").write_text("no error")
    except dist.ArchitectureDriftError as e:
        (out / f"drift{r}.txt").write_text(str(e))
    # Resume in a shared run directory: killed after epoch 1 and resumed == uninterrupted. These runs
    # keep the default per-rank batch norm: the ranks normalise their own batches, yet stay identical.
    def searcher(name):
        return Searcher(space, _search_config(epochs=2), wl, al, vl, table=_table(space), run_dir=out / name,
                        progress=False)

    full = searcher("full")
    full.run()
    cut = searcher("cut")
    end_epoch = cut._end_epoch

    def end_epoch_then_die(epoch, *a):
        end_epoch(epoch, *a)
        if epoch == 0:
            raise KeyboardInterrupt

    cut._end_epoch = end_epoch_then_die
    try:
        cut.run()
    except KeyboardInterrupt:
        pass
    resumed = searcher("cut")
    resumed.run(resume=True)
    a, b = full.net.state_dict(), resumed.net.state_dict()
    res["resume_equal"] = resumed.epoch == 2 and all(torch.equal(a[k], b[k]) for k in a)
    res["alpha_nosync"] = full.net.alpha.detach().clone()
    # The library's loaders shard the halves over the ranks.
    lw, la, lv, _ = search_loaders("synthetic", None, (32, 32), 2, dataset_kwargs={"num_images": 16})
    res["loaders"] = {"weights": list(lw(0).sampler), "arch": list(la(0).sampler), "val": list(lv(0).sampler),
                      "sampler": type(lw(0).sampler).__name__}
    # SyncBatchNorm over 2 ranks x 3 images == BatchNorm over the 6 images (output, gradient, statistics).
    torch.manual_seed(0)
    x, w = torch.randn(6, 4, 5, 5) * 3 + 1, torch.randn(6, 4, 5, 5)
    ref = nn.BatchNorm2d(4)
    xr = x.clone().requires_grad_(True)
    y_ref = ref(xr)
    (y_ref * w).sum().backward()
    mine = dist.convert_sync_batchnorm(nn.BatchNorm2d(4), "cpu")
    part = slice(3 * r, 3 * r + 3)
    xs = x[part].clone().requires_grad_(True)
    y = mine(xs)
    (y * w[part]).sum().backward()
    res.update(bn_out=y.detach(), bn_ref=y_ref.detach()[part], bn_grad=xs.grad, bn_ref_grad=xr.grad[part],
               bn_running=torch.cat([mine.running_mean, mine.running_var]),
               bn_ref_running=torch.cat([ref.running_mean, ref.running_var]))
    torch.save(res, out / f"search{r}.pt")


def _worker_train(out: Path) -> None:
    import gasgnn.train as train_mod

    r = dist.rank()
    if r != 0:  # any write by rank 1 fails the test
        def refuse(path, *a, **k):
            raise AssertionError(f"rank {r} wrote {path}")

        for name in ("atomic_torch_save", "atomic_write_bytes", "atomic_write_text", "write_json"):
            setattr(train_mod, name, refuse)
    genotype = random_genotype(_space(), torch.Generator().manual_seed(1))
    tr, va = _train_data()
    full = Trainer(genotype, tr, va, _train_config(), out / "full")
    res = full.fit()

    class Killed(Exception):
        pass

    def kill_after_first(trainer, row):
        if row["epoch"] == 1:
            raise Killed

    try:
        Trainer(genotype, tr, va, _train_config(), out / "cut", callbacks=[kill_after_first]).fit()
        raise AssertionError("the callback did not stop the run")
    except Killed:
        pass
    resumed = Trainer(genotype, tr, va, _train_config(), out / "cut")
    resumed.fit(resume=True)
    torch.save({"full": full.model.state_dict(), "resumed": resumed.model.state_dict(),
                "history": [{k: v for k, v in h.items() if k != "seconds"} for h in full.history],
                "iterations": res["iterations"]}, out / f"train{r}.pt")


if __name__ == "__main__":
    torch.set_num_threads(1)
    scenario, out_dir = sys.argv[1], Path(sys.argv[2])
    with dist.session("gloo"):
        assert dist.world_size() == WORLD
        {"search": _worker_search, "train": _worker_train}[scenario](out_dir)
