"""argparse types of the commands' own arguments: a bad value ends in argparse's usage line and one
message naming the argument, the value and what is allowed (exit status 2), before any work starts."""
import argparse
from pathlib import Path


def int_at_least(minimum):
    """An argparse `type`: an integer >= minimum."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value

    return parse


def image_file(text):
    """An argparse `type`: a path in an existing folder whose suffix is an image format matplotlib writes
    (png, pdf, svg, ...)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    formats = sorted(FigureCanvasAgg(Figure()).get_supported_filetypes())
    path = Path(text)
    if path.suffix.lstrip(".").lower() not in formats:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no image suffix that picks a format: end the file name with one of "
            f"{', '.join('.' + name for name in formats)}"
        )
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder of {text!r} does not exist: create it or write elsewhere")
    return path
