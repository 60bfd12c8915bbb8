"""A short environment report (Dassl's `collect_env_info`); the run log is `dpt_runs.run_log`."""
import platform


def collect_env_info():
    import PIL
    import torch
    import torchvision

    lines = [
        f"Python: {platform.python_version()} ({platform.platform()})",
        f"PyTorch: {torch.__version__}",
        f"torchvision: {torchvision.__version__}",
        f"Pillow: {PIL.__version__}",
        f"CUDA available: {torch.cuda.is_available()}",
    ]
    if torch.cuda.is_available():
        lines.append(f"GPU: {torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}")
    lines.append(f"CPU threads: {torch.get_num_threads()}")
    return "\n".join(lines)
