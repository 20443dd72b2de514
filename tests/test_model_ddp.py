"""DDP over 2 gloo CPU processes gives the gradients of one process with the doubled batch, and
stops every rank at the same step when one of them is signalled."""

import os
import signal
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from millivid.jobs.video_task import InMemoryLatents, VideoBatch, VideoTask
from millivid.model.tokens import Tokens
from millivid.presets import load_preset

SHAPES = [(4, 4), (2, 2), (1, 1)]


def make_task():
    gen = torch.Generator().manual_seed(0)
    videos = [
        (
            [torch.randn(48, h, w, 4, generator=gen) for h, w in SHAPES],
            torch.randint(0, 3, (48,), generator=gen),
        )
        for _ in range(3)
    ]
    cfg = load_preset("tiny", ["video_train.batch_size=3", "diffusion.context_dropout=0.3"])
    return VideoTask(cfg, "millivid", InMemoryLatents(videos))


def half_batch(task, rank):
    return task.batch(0, torch.Generator().manual_seed(100 + rank))


def make_model(task):
    torch.manual_seed(0)
    model = task.build_model()
    with torch.no_grad():  # non-zero adaLN so every parameter gets a gradient
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.1)
    return model


def worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    task = make_task()
    model = DistributedDataParallel(make_model(task))
    loss, _ = task.loss(model, half_batch(task, rank), "cpu")
    loss.backward()
    if rank == 0:
        grads = {n: p.grad for n, p in model.module.named_parameters()}
        torch.save(grads, os.path.join(out_dir, "ddp.pt"))
    _leave_together()


def _leave_together():
    """Both ranks pass a barrier, then exit without tearing gloo down: its teardown aborted a
    rank now and then on a loaded machine ("terminate called without an active exception")."""
    dist.barrier()
    os._exit(0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_gloo_processes_match_one_process_with_doubled_batch(tmp_path):
    mp.spawn(worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)

    task = make_task()
    halves = [half_batch(task, r) for r in range(2)]
    both = VideoBatch(
        Tokens.cat([h.tokens for h in halves]),
        torch.cat([h.t for h in halves]),
        torch.cat([h.noise for h in halves]),
        torch.cat([h.dropped for h in halves]),
        halves[0].cin,
    )
    model = make_model(task)
    loss, _ = task.loss(model, both, "cpu")
    loss.backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(ddp[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert sum(g.abs().sum() for g in ddp.values()) > 0


class _SignalledTask:
    """Toy regression; the rank given in ``signal_rank`` sends itself SIGTERM at step 3."""

    items_name, items_per_batch = "samples", 4

    def __init__(self, rank, signal_rank):
        self.rank, self.signal_rank = rank, signal_rank

    def build_model(self):
        return torch.nn.Linear(3, 1)

    def batch(self, step, generator):
        if step == 3 and self.rank == self.signal_rank:
            os.kill(os.getpid(), signal.SIGTERM)
        x = torch.randn(4, 3, generator=generator)
        return x, x.sum(1, keepdim=True)

    def loss(self, model, batch, device):
        x, y = batch
        return ((model(x) - y) ** 2).mean(), {}


def stop_worker(rank, world, port, out_dir):
    from millivid.train import TrainConfig, train

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank)
    )
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    cfg = TrainConfig(steps=1000, batch_size=4, warmup_steps=1, log_every=5, checkpoint_every=10**6)
    try:
        train(_SignalledTask(rank, 1), cfg, out_dir, config={}, device="cpu", show_progress=False)
    except KeyboardInterrupt as stop:
        with open(os.path.join(out_dir, f"stopped{rank}.txt"), "w") as f:
            f.write(str(stop))
    _leave_together()


def test_sigterm_on_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    """Under torchrun one rank may get the signal first: the ranks agree at log steps, all stop
    at the same step, and rank 0 saves it (no rank is left waiting in an all-reduce)."""
    ctx = mp.spawn(stop_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=False)
    deadline = time.monotonic() + 120
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for proc in ctx.processes:
                proc.kill()
            raise AssertionError("the ranks did not stop together (one waits in an all-reduce)")
    for rank in (0, 1):
        assert "signal 15" in (tmp_path / f"stopped{rank}.txt").read_text(), rank
    state = torch.load(tmp_path / "checkpoint" / "state.pt", weights_only=True)
    assert int(state["step"]) == 5  # signalled before step 4 (0-based 3), agreed at step 5
