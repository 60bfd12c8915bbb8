"""Install the DPT harness: `pip install .` (or a wheel): packages, shipped configs and weights, console scripts.

The repository keeps the layout users asked for (`configs/` at the root); in the wheel the same files
are package data of `dpt_tools` (`dpt_tools/configs/...`), found by `dpt_tools.config_files`. The toy
CLIP weights are package data of `trainers` (`trainers/weights/`). Top-level import names: `trainers`
(CoOp's convention), and names unique to this project (`dassl_compat`, `clip_datasets`, `dpt_models`,
`dpt_tools`, `dpt_toyworld`, `dpt_plugin`); a clone's `train.py` is not installed (`dpt-train` runs the same code).
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
CONFIG_PACKAGES = sorted(
    "dpt_tools.configs" + "".join(f".{part}" for part in folder.relative_to(HERE / "configs").parts)
    for folder in [HERE / "configs", *(path for path in (HERE / "configs").rglob("*") if path.is_dir())]
)


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
    packages=find_packages(
        include=["dassl_compat*", "trainers*", "clip_datasets*", "dpt_models*", "dpt_tools*", "dpt_toyworld*"]
    )
    + CONFIG_PACKAGES,
    package_dir={package: "configs/" + "/".join(package.split(".")[2:]) for package in CONFIG_PACKAGES},
    package_data={"trainers": ["weights/*.pt"], **{package: ["*.yaml"] for package in CONFIG_PACKAGES}},
    py_modules=["dpt_plugin"],
    install_requires=requirements(),
    entry_points={
        "console_scripts": [
            "dpt-train=dpt_tools.train:cli",
            "dpt-demo=dpt_tools.demo:main",
            "dpt-config=dpt_tools.config_files:main",
            "dpt-results=dpt_tools.parse_results:main",
            "dpt-plot=dpt_tools.plot_results:main",
            "dpt-check-data=dpt_tools.check_data:main",
            "dpt-benchmark=dpt_tools.benchmark:main",
            "dpt-interpret=dpt_tools.interpret_prompt:main",
            "dpt-visualize=dpt_tools.visualize:main",
        ]
    },
)
