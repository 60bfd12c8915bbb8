"""Install the DPT harness: `pip install -e .` (packages, train.py and console scripts)."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


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
    packages=find_packages(include=["dassl_compat*", "trainers*", "clip_datasets*", "tools*", "toyworld*"]),
    py_modules=["train"],
    install_requires=requirements(),
    entry_points={
        "console_scripts": [
            "dpt-train=train:main",
            "dpt-results=tools.parse_results:main",
            "dpt-plot=tools.plot_results:main",
            "dpt-check-data=tools.check_data:main",
            "dpt-benchmark=tools.benchmark:main",
            "dpt-interpret=tools.interpret_prompt:main",
            "dpt-visualize=tools.visualize:main",
        ]
    },
)
