"""CoOp's entry point in a clone: `python train.py --root $DATA --trainer DPT ...`.

The code is `dpt_tools/train.py` (installed as the `dpt-train` command); this file only runs it, so
that the installed distribution owns no top-level module named `train`.
"""
from dpt_tools.train import main

if __name__ == "__main__":
    main()
