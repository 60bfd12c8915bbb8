"""tools.benchmark builds every trainer through train.py's config path and measures it (no timing
is asserted: a benchmark's numbers depend on the machine)."""
from tools import benchmark


def test_benchmark_reports_every_trainer(tiny_clip_file, capsys):
    rows = benchmark.main(["--backbone", "tiny", "--path", tiny_clip_file, "--classes", "4", "--batch-size", "2",
                           "--steps", "1", "--precision", "fp32", "--device", "cpu",
                           "--opts", "TRAINER.DPT.BOTTOMLIMIT", "2"])
    assert [row["trainer"] for row in rows] == list(benchmark.DEFAULT_CONFIGS)
    by_name = {row["trainer"]: row for row in rows}
    assert by_name["ZeroshotCLIP"]["trainable"] == 0 and "train_img_s" not in by_name["ZeroshotCLIP"]
    assert by_name["CoOp"]["trainable"] == 16 * 128  # 16 context vectors of the text width
    assert all(row["eval_img_s"] > 0 for row in rows)
    assert all(row["train_img_s"] > 0 for row in rows if row["trainer"] != "ZeroshotCLIP")
    table = capsys.readouterr().out
    assert all(f"| {name} |" in table for name in benchmark.DEFAULT_CONFIGS)
