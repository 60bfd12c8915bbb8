"""dpt-benchmark's CPU memory (peak RSS above the phase's start), whole-evaluation time and --threads
(no number is asserted beyond being measured: they depend on the machine)."""
import sys

import pytest
import torch

from dpt_tools import benchmark


def test_benchmark_reports_rss_whole_evaluation_and_threads(tiny_clip_file, capsys):
    threads = torch.get_num_threads()
    try:
        rows = benchmark.main(["--backbone", "tiny", "--path", tiny_clip_file, "--trainers", "CoOp", "DPT",
                               "--classes", "4", "--batch-size", "2", "--steps", "1", "--precision", "fp32",
                               "--device", "cpu", "--eval-images", "5", "--threads", "1",
                               "--opts", "TRAINER.DPT.BOTTOMLIMIT", "2"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "cpu, 1 threads" in out and "| eval of 5 img, s |" in out
    for row in rows:
        assert row["eval_set_s"] > 0
        assert row["train_mib"] is None and row["eval_mib"] is None  # no CUDA on a CPU run
        if sys.platform == "linux":
            assert row["train_rss_mib"] >= 0 and row["eval_rss_mib"] >= 0
        assert f"| {row['trainer']} | {row['trainable']:,} |" in out


def test_whole_evaluation_encodes_the_text_once_and_runs_every_batch(tiny_clip_file, tmp_path):
    args = benchmark.build_parser().parse_args(["--backbone", "tiny", "--path", tiny_clip_file, "--classes", "4",
                                                "--precision", "fp32", "--device", "cpu"])
    benchmark.write_class_folder(str(tmp_path), [f"class {i}" for i in range(4)])
    trainer = benchmark.build("CoOp", args, str(tmp_path), 32)
    encodings, batches = [], []
    trainer.model.text_encoder.ln_final.register_forward_hook(lambda *_: encodings.append(1))
    inference = trainer.model_inference
    trainer.model_inference = lambda images: batches.append(len(images)) or inference(images)
    trainer.set_model_mode("train")
    benchmark.evaluate(trainer, torch.randn(2, 3, 32, 32), n_images=5)
    assert batches == [2, 2, 2] and len(encodings) == 1
    benchmark.evaluate(trainer, torch.randn(2, 3, 32, 32), n_images=5)  # a new evaluation encodes afresh
    assert len(encodings) == 2


@pytest.mark.skipif(sys.platform != "linux", reason="peak RSS is read from /proc")
def test_peak_rss_sees_a_large_allocation():
    rss = benchmark.PeakRSS()
    rss.start()
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    del block
    assert rss.mib() >= 60
