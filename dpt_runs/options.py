"""Declared rules for config values, checked up front in one pass (`check_options`).

A config node's owner (each trainers/<method>.py beside its `extend_cfg`, trainers/base.py for the
shared OPTIM / INPUT / DATALOADER / ... keys, clip_datasets/config.py for DATASET) declares

    OPTIONS = {"TRAINER.COOP": {"N_CTX": non_negative_int, "CLASS_TOKEN_POSITION": choice("end", "middle", "front")}}

a mapping of node -> {key: rule}. `check_options(cfg, schemas)` walks every declared key and raises
one UserError naming the first bad value: the key, the value, what is allowed and the fix. yacs
already refuses a value of another type than the default's, except None, which it lets through.
train.py checks the OPTIONS of every config module and --plugin module before it writes anything
(`trainers.config.check_cfg_options`); each trainer's `check_cfg` checks the shared ones and its own
again, for harnesses that build it themselves. Project code under either engine: no Dassl name here.
"""
from numbers import Real

from dpt_models.errors import UserError


class Rule:
    """What a value must be: `allowed` describes it to the user ("an integer >= 1"), `test(value)` checks it."""

    def __init__(self, allowed, test):
        self.allowed = allowed
        self.test = test

    def accepts(self, value):
        return self.test(value)


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    return isinstance(value, Real) and not isinstance(value, bool)


positive_int = Rule("an integer >= 1", lambda v: is_int(v) and v >= 1)
non_negative_int = Rule("an integer >= 0", lambda v: is_int(v) and v >= 0)
integer = Rule("an integer", is_int)
number = Rule("a number", is_number)
positive_float = Rule("a number > 0", lambda v: is_number(v) and v > 0)
non_negative_float = Rule("a number >= 0", lambda v: is_number(v) and v >= 0)


def choice(*values):
    """One of `values` (strings, compared exactly)."""
    return Rule("one of " + ", ".join(repr(v) for v in values), lambda v: v in values)


def sequence_of(rule, length=None):
    """A list or tuple of `length` items (any length >= 1 when None), each accepted by `rule`."""
    count = f"{length}" if length is not None else "one or more"
    return Rule(
        f"a list of {count} values, each {rule.allowed}",
        lambda v: isinstance(v, (list, tuple)) and (len(v) == length if length is not None else len(v) >= 1)
        and all(rule.accepts(item) for item in v),
    )


def option_error(key, value, rule):
    """The UserError of a value that breaks its rule."""
    return UserError(
        f"{key} must be {rule.allowed}, got {value!r}. Set {key} to such a value in your config file or on the "
        f"command line ({key} VALUE)."
    )


def merged_schemas(*schemas):
    """One schema ({node path: {key: Rule}}) from several, e.g. the OPTIONS of every config module."""
    merged = {}
    for schema in schemas:
        for node_path, rules in schema.items():
            merged.setdefault(node_path, {}).update(rules)
    return merged


def check_options(cfg, schemas):
    """Check every key declared in `schemas` ({node path: {key: Rule}}) against cfg; raise the first violation
    as a UserError (`option_error`). Nodes the config lacks (another harness's config) are skipped."""
    for node_path, rules in schemas.items():
        node = cfg
        for part in node_path.split("."):
            node = node.get(part) if hasattr(node, "get") else None
        if node is None:
            continue
        for key, rule in rules.items():
            if key in node and not rule.accepts(node[key]):
                raise option_error(f"{node_path}.{key}", node[key], rule)
