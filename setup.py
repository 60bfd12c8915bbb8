"""Install the DPT harness: `pip install .` (or a wheel): packages, shipped configs and weights, console scripts.

The repository keeps the layout users asked for (`configs/` and `scripts/` at the root); in the wheel the
same files are package data of `dpt_tools` (`dpt_tools/configs/...`, found by `dpt_tools.config_files`;
`dpt_tools/scripts/...`, whose settings.sh `dpt-sweep` reads to make the runs the scripts make). The toy
CLIP weights are package data of `dpt_models` (`dpt_models/weights/`). Top-level import names: `trainers`
(CoOp's convention), and names unique to this project (`dpt_models`, `dpt_runs`, `dassl_compat`, `clip_datasets`,
`dpt_tools`, `dpt_toyworld`, `dpt_plugin`); a clone's `train.py` is not installed (`dpt-train` runs the same code).
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def data_packages(folder):
    """Every folder under the repository's `folder`/ as a package `dpt_tools.<folder>.<sub>...` of the wheel."""
    root = HERE / folder
    return sorted(".".join(("dpt_tools", folder, *path.relative_to(root).parts))
                  for path in [root, *(path for path in root.rglob("*") if path.is_dir())])


CONFIG_PACKAGES = data_packages("configs")
SCRIPT_PACKAGES = data_packages("scripts")


def requirements():
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


setup(
    name="dpt-prompt-tuning",
    version="0.1.0",
    description="DPT (dual-modality prompt tuning of CLIP) and CoOp/CoCoOp/VPT baselines on a Dassl-compatible harness",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["dpt_models*", "dpt_runs*", "dassl_compat*", "trainers*", "clip_datasets*",
                                    "dpt_tools*", "dpt_toyworld*"])
    + CONFIG_PACKAGES + SCRIPT_PACKAGES,
    package_dir={package: "/".join(package.split(".")[1:]) for package in CONFIG_PACKAGES + SCRIPT_PACKAGES},
    package_data={
        "dpt_models": ["weights/*.pt"],
        "dpt_tools": ["sweeps/*.yaml"],
        **{package: ["*.yaml"] for package in CONFIG_PACKAGES},
        **{package: ["*.sh"] for package in SCRIPT_PACKAGES},
    },
    py_modules=["dpt_plugin"],
    install_requires=requirements(),
    extras_require={
        "test": ["pytest", "pytest-xdist", "submitit"],  # `pip install .[test]`: what the tests need beyond the runtime
        "slurm": ["submitit"],  # dpt-sweep --executor slurm
        "tensorboard": ["tensorboard"],  # the bundled engine's event files (a tb-nightly serves as well)
    },
    entry_points={
        "console_scripts": [
            "dpt-train=dpt_tools.train:cli",
            "dpt-demo=dpt_tools.demo:main",
            "dpt-config=dpt_tools.config_files:main",
            "dpt-results=dpt_tools.parse_results:main",
            "dpt-plot=dpt_tools.plot_results:main",
            "dpt-check-data=dpt_tools.check_data:main",
            "dpt-benchmark=dpt_tools.benchmark:cli",
            "dpt-interpret=dpt_tools.interpret_prompt:main",
            "dpt-visualize=dpt_tools.visualize:main",
            "dpt-sweep=dpt_tools.sweep:main",
        ]
    },
)
