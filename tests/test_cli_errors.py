"""Every anticipated error of the ``millivid`` command ends in one line naming the file, key or
flag, without a traceback; ``--debug`` or ``MILLIVID_DEBUG=1`` shows the traceback instead."""

import errno
import os
import sys

import numpy as np
import pytest
import torch

import millivid.device
from millivid.cli import build_parser, main
from millivid.device import resolve_device

PLAN = ["plan", "--method", "millivid", "--preset", "tiny", "--start", "0", "--end", "8"]


def one_line(capsys) -> str:
    """The single line ``main`` wrote to stderr for an error (no traceback)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def usage_error(capsys, argv: list[str]) -> str:
    """argparse's error line for ``argv`` (exit code 2; the usage lines before it)."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "flag", "value"),
    [
        (["world", "render", "--out", "x", "--size", "0"], "--size", "0"),
        (["world", "render", "--out", "x", "--frames", "-3"], "--frames", "-3"),
        (["data", "make", "--videos", "0", "--out", "x"], "--videos", "0"),
        (["data", "make", "--videos", "2", "--out", "x", "--shard-size", "0"], "--shard-size", "0"),
        (["data", "make", "--videos", "2", "--out", "x", "--batch", "0"], "--batch", "0"),
        (["data", "make", "--videos", "2", "--out", "x", "--workers", "0"], "--workers", "0"),
        (["data", "import", "src", "--out", "x", "--size", "0"], "--size", "0"),
        (["evaluate", "--batch-frames", "0"], "--batch-frames", "0"),
        (["evaluate", "probe-train", "--steps", "0"], "--steps", "0"),
        (["generate", "--ckpt", "c", "--seed", "1", "--out", "o", "--steps", "0"], "--steps", "0"),
        (["generate", "--ckpt", "c", "--seed", "1", "--out", "o", "--frames", "0"], "--frames", "0"),
        (["ae", "train", "--data", "d", "--out", "o", "--max-videos", "0"], "--max-videos", "0"),
        (["ae", "recon", "--ckpt", "c", "--video", "v", "--out", "o", "--frames", "0"], "--frames", "0"),
        ([*PLAN, "--max-steps", "0"], "--max-steps", "0"),
        (["baseline", "--kind", "all", "--gt-dir", "g", "--out", "o", "--context", "0"], "--context", "0"),
        (["report", "run", "--max-videos", "0"], "--max-videos", "0"),
    ],
)  # fmt: skip
def test_sizes_and_counts_below_one_are_usage_errors_naming_the_flag(capsys, argv, flag, value):
    line = usage_error(capsys, argv)
    assert line.endswith(f"argument {flag}: must be >= 1, got {value}")
    at = argv.index(flag) + 1
    line = usage_error(capsys, [*argv[:at], "many", *argv[at + 1 :]])
    assert line.endswith(f"argument {flag}: expected an integer >= 1, got 'many'")


@pytest.mark.parametrize("horizons", ["64,abc", "64,,256", "0,64", ""])
def test_a_comma_list_of_integers_names_the_flag_and_the_bad_item(capsys, horizons):
    line = usage_error(capsys, ["evaluate", "--horizons", horizons])
    assert line.startswith("millivid evaluate: error: argument --horizons: expected comma")
    assert repr(horizons) in line


def test_a_good_horizon_list_is_parsed_once_into_integers():
    from millivid.cli.evaluate import eval_config_from_args

    args = build_parser().parse_args(["evaluate", "--horizons", "8, 16,64", "--preset", "tiny"])
    assert args.horizons == (8, 16, 64)
    assert eval_config_from_args(args).horizon_ends == (8, 16, 64)


def test_a_picture_flag_needs_the_suffix_of_its_format(capsys, tmp_path):
    line = usage_error(capsys, [*PLAN, "--png", str(tmp_path / "plan")])
    assert "argument --png:" in line and "must end in .png" in line
    line = usage_error(capsys, ["video", "curves", "run", "--out", str(tmp_path / "c.jpg")])
    assert "argument --out:" in line and ".png or .svg or .pdf" in line
    assert not list(tmp_path.iterdir())


def test_cuda_or_mps_on_a_machine_without_them_names_device_and_what_is_here(
    capsys, monkeypatch, tmp_path
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(millivid.device, "_mps_available", lambda: False)
    for device in ("cuda", "cuda:1", "mps"):
        with pytest.raises(ValueError, match=r"available: cpu\).*--device auto"):
            resolve_device(device)
        line = usage_error(capsys, ["world", "render", "--out", str(tmp_path), "--device", device])
        assert f"argument --device: device '{device}' is not available here" in line
        assert "available: cpu)" in line
    assert resolve_device("auto") == torch.device("cpu")


def test_a_gpu_index_past_the_gpus_here_is_a_usage_error(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(millivid.device, "_mps_available", lambda: False)
    line = usage_error(capsys, ["world", "render", "--out", str(tmp_path), "--device", "cuda:3"])
    assert "argument --device: device 'cuda:3'" in line
    assert "GPU 3 asked for, 1 GPU(s) here; available: cpu, cuda:0" in line
    assert build_parser().parse_args(["world", "render", "--out", "x", "--device", "cuda"]).device
    assert build_parser().parse_args(["generate", "--ckpt", "c", "--seed", "1", "--out", "o",
                                      "--device", "cuda:0"]).device == "cuda:0"  # fmt: skip


def test_file_system_errors_name_the_path_and_what_to_do(capsys, tmp_path):
    folder = tmp_path / "plan.svg"
    folder.mkdir()
    assert main([*PLAN, "--svg", str(folder)]) == 1
    line = one_line(capsys)
    assert line == f"millivid plan: error: {folder}: Is a directory: give a file, not a folder"
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main([*PLAN, "--svg", str(blocker / "sub" / "p.svg")]) == 1
    assert one_line(capsys).endswith(
        f"{blocker / 'sub'}: Not a directory: a part of the path is a file, not a folder"
    )
    assert main([*PLAN, "--svg", str(blocker / "p.svg")]) == 1
    assert one_line(capsys).endswith(f"{blocker}: File exists: move it away or choose another path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "plan.svg"]  # no temp files


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (errno.EACCES, "Permission denied: check its permissions or choose another path"),
        (errno.ENOSPC, "No space left on device: free some space or write elsewhere"),
    ],
)
def test_permission_and_full_disk_errors_name_the_file(capsys, monkeypatch, tmp_path, code, hint):
    target = tmp_path / "p.svg"

    def refused(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(target))

    monkeypatch.setattr("millivid.cli.plan.draw_plan", refused)
    assert main([*PLAN, "--svg", str(target)]) == 1
    assert one_line(capsys) == f"millivid plan: error: {target}: {hint}"


def test_a_corrupt_npz_is_named(capsys, tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, video=np.zeros((4, 8, 8, 3), np.uint8))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:200])  # a truncated download or copy
    assert main(["evaluate", "--pred", str(cut), "--gt", str(good), "--start", "1"]) == 1
    line = one_line(capsys)
    assert line.startswith(f"millivid evaluate: error: {cut}: not a readable .npz (truncated")
    assert line.endswith("delete or re-create it")


def test_a_video_without_frames_is_named(capsys, tmp_path):
    empty = tmp_path / "empty.npz"
    np.savez(empty, video=np.zeros((0, 64, 64, 3), np.uint8), actions=np.zeros(0, np.int64))
    argv = ["ae", "recon", "--ckpt", "checkpoints/mini/ae", "--video", str(empty), "--out"]
    assert main([*argv, str(tmp_path / "r.png"), "--device", "cpu"]) == 1
    line = one_line(capsys)  # was IndexError from the frame picker
    assert f"{empty} key 'video': no frames (shape [0, 64, 64, 3])" in line
    argv = ["ae", "encode", "--ckpt", "checkpoints/mini/ae", "--data", str(tmp_path), "--out"]
    assert main([*argv, str(tmp_path / "latents"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err  # was torch.cat of an empty list of encoded chunks
    assert "Traceback" not in err and f"{empty} key 'video': no frames" in err.splitlines()[-1]


def test_encoding_a_folder_without_videos_is_refused(capsys, tmp_path):
    argv = ["ae", "encode", "--ckpt", "checkpoints/mini/ae", "--data", str(tmp_path), "--out"]
    assert main([*argv, str(tmp_path / "latents"), "--device", "cpu"]) == 1
    assert f"{tmp_path}: no .npz videos to encode: give a dataset folder" in one_line(capsys)
    assert not (tmp_path / "latents").exists()  # was an empty cache and exit 0


def test_pickled_arrays_are_refused_by_name_without_advice_to_load_them(capsys, tmp_path):
    objects = np.array([{"a": 1}, None], dtype=object)  # loading such arrays can run code
    good = tmp_path / "good.npz"
    np.savez(good, video=np.zeros((4, 8, 8, 3), np.uint8))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, video=objects)
    assert main(["evaluate", "--pred", str(pickled), "--gt", str(good), "--start", "1"]) == 1
    line = one_line(capsys)
    assert f"{pickled} key 'video': holds Python objects (a pickled array)" in line
    actions = tmp_path / "actions.npy"
    np.save(actions, objects, allow_pickle=True)
    argv = ["generate", "--ckpt", "checkpoints/mini/millivid", "--seed", "3", "--context", "4"]
    assert main([*argv, "--frames", "2", "--actions", str(actions), "--out", str(tmp_path / "g")])
    line = one_line(capsys)
    assert f"{actions} key 'actions': holds Python objects (a pickled array)" in line
    assert "allow_pickle" not in line and "weights_only" not in line


def test_invalid_json_names_the_file_where_it_can_and_says_how_to_find_it_elsewhere(
    capsys, tmp_path
):
    pred = tmp_path / "pred.npz"
    np.savez(pred, video=np.zeros((4, 8, 8, 3), np.uint8))
    (tmp_path / "pred.json").write_text('{"context": 2')  # cut short
    assert main(["evaluate", "--pred", str(pred), "--gt", str(pred)]) == 1
    assert f"{tmp_path / 'pred.json'}: no readable 'context'" in one_line(capsys)
    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    (run / "eval" / "results.json").write_text("{")
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 1
    line = one_line(capsys)  # read through millivid.atomic.read_json: the file is named
    assert line.startswith(f"millivid report: error: {run / 'eval' / 'results.json'}: not valid")
    assert "fix or delete it" in line


def test_out_of_gpu_memory_is_one_line_with_what_to_do(capsys, monkeypatch):
    def too_big(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79 GiB"
        )

    monkeypatch.setattr("millivid.cli.plan.make_plan", too_big)
    assert main(PLAN) == 1
    line = one_line(capsys)
    assert "out of GPU memory (CUDA out of memory. Tried to allocate 2.00 GiB)" in line
    assert "smaller batch" in line


def interrupt(monkeypatch, target: str, message: str = "") -> None:
    def stopped(*args, **kwargs):
        raise KeyboardInterrupt(message) if message else KeyboardInterrupt

    monkeypatch.setattr(target, stopped)


def test_ctrl_c_and_sigterm_end_in_one_line_and_exit_130(capsys, monkeypatch):
    interrupt(monkeypatch, "millivid.cli.plan.make_plan")
    monkeypatch.setattr(sys, "argv", ["millivid", *PLAN])
    assert main() == 130
    assert one_line(capsys) == "millivid plan: stopped (Ctrl-C)"
    # the trainer and the rollout turn SIGTERM into a KeyboardInterrupt after a whole step
    interrupt(monkeypatch, "millivid.cli.generate.load", "stopped between steps on signal 15")
    monkeypatch.setattr(sys, "argv", ["millivid", "generate", "--ckpt", "c", "--seed", "1",
                                      "--out", "o"])  # fmt: skip
    assert main() == 130
    assert one_line(capsys) == (
        "millivid generate: stopped (between steps on SIGTERM): rerun the same command to resume"
    )
    with pytest.raises(KeyboardInterrupt):  # called from Python, the caller gets to stop too
        main(["generate", "--ckpt", "c", "--seed", "1", "--out", "o"])


def test_debug_flag_and_environment_show_the_traceback(capsys, monkeypatch, tmp_path):
    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    (run / "eval" / "results.json").write_text("{")
    argv = ["report", str(run), "--out", str(tmp_path / "r.html")]
    monkeypatch.delenv("MILLIVID_DEBUG", raising=False)
    with pytest.raises(ValueError, match="not valid JSON"):
        main(["--debug", *argv])
    monkeypatch.setenv("MILLIVID_DEBUG", "1")
    with pytest.raises(ValueError, match="not valid JSON"):
        main(argv)
    monkeypatch.setenv("MILLIVID_DEBUG", "0")
    assert main(argv) == 1
    one_line(capsys)
    interrupt(monkeypatch, "millivid.cli.plan.make_plan")
    monkeypatch.setattr(sys, "argv", ["millivid", "--debug", *PLAN])
    with pytest.raises(KeyboardInterrupt):
        main()


def test_a_bug_is_not_hidden_behind_one_line(monkeypatch):
    def broken(*args, **kwargs):
        return 1 // 0

    monkeypatch.setattr("millivid.cli.plan.make_plan", broken)
    with pytest.raises(ZeroDivisionError):
        main(PLAN)


def test_help_says_how_to_see_the_traceback(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--debug" in text and "MILLIVID_DEBUG=1" in text and "full traceback" in text
