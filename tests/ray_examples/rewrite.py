"""The import swap: Ray Tune example source in, tune_ckpt example source out.

Only import statements and the module-qualified names below change; every other byte of the
file is kept (comments, strings and annotations in quotes included). The edits are found
with :mod:`ast` and applied as byte spans, so the layout of the file is untouched.

=================================================  ===============================================
Ray Tune                                           tune_ckpt
=================================================  ===============================================
``from ray import tune``                           ``import tune_ckpt as tune``
``from ray import air``                            ``from tune_ckpt import air``
``from ray import train``                          ``import tune_ckpt as train`` (for TRAIN_NAMES)
``from ray.tune import X``                         ``from tune_ckpt import X``
``from ray.tune.M import X``                       ``from tune_ckpt.M import X``
``from ray.air[.M] import X``                      ``from tune_ckpt.air[.M] import X``
``from ray.train import X`` (X in TRAIN_NAMES)     ``from tune_ckpt import X``
``from ray.tune.examples.M import X``              ``from M import X`` (M rewritten beside it)
``import ray.tune[.M] [as A]``                     ``import tune_ckpt[.M] [as A]``
``ray.tune.X`` in code                             ``tune_ckpt.X``
``ray.air.X`` in code                              ``tune_ckpt.air.X``
``ray.train.X`` in code (X in TRAIN_NAMES)         ``tune_ckpt.X``
``import ray`` (when a name above was rewritten)   ``import ray, tune_ckpt``
=================================================  ===============================================

``TRAIN_NAMES``: ``Checkpoint``, ``CheckpointConfig``, ``FailureConfig``, ``RunConfig``,
``report``, ``get_checkpoint``, ``get_context``. Everything else of Ray stays Ray:
``import ray``, ``ray.init``, ``ray.get``, ``ray.remote``, ... (Ray core, which tune_ckpt runs
on). Anything of ``ray.train`` outside ``TRAIN_NAMES`` (Ray Train's trainers) and other
``ray.tune.examples`` uses raise :class:`RewriteError`: the example is not covered by the
swap.
"""

from __future__ import annotations

import ast
import bisect
import difflib
import re
from dataclasses import dataclass

TRAIN_NAMES = frozenset(
    {
        "Checkpoint",
        "CheckpointConfig",
        "FailureConfig",
        "RunConfig",
        "report",
        "get_checkpoint",
        "get_context",
    }
)
_EXAMPLES = "ray.tune.examples"
_FROM_MODULE = re.compile(rb"from\s+([\w.]+)\s+import\b")


class RewriteError(ValueError):
    """The file uses Ray Tune in a way the table does not cover."""


@dataclass(frozen=True)
class Edit:
    """Replace ``source[start:end]`` (byte offsets) with ``text``."""

    start: int
    end: int
    text: bytes


@dataclass(frozen=True)
class Rewritten:
    """The rewritten source and the sibling example modules it imports."""

    source: bytes
    siblings: tuple[str, ...]
    edits: int


def _line_starts(source: bytes) -> list[int]:
    # ast numbers lines by \n, \r\n and \r; its column offsets count UTF-8 bytes.
    return [0, *(m.end() for m in re.finditer(rb"\r\n|\r|\n", source))]


def _swap_module(module: str, names: list[str]) -> str:
    """The tune_ckpt module of ``from module import names``, or RewriteError."""
    if module == "ray.tune" or module.startswith("ray.tune."):
        return "tune_ckpt" + module[len("ray.tune") :]
    if module == "ray.air" or module.startswith("ray.air."):
        return "tune_ckpt.air" + module[len("ray.air") :]
    if module == "ray.train":
        outside = sorted(set(names) - TRAIN_NAMES)
        if outside:
            raise RewriteError(f"from ray.train import {', '.join(outside)}: Ray Train, not Tune")
        return "tune_ckpt"
    raise AssertionError(module)


def _from_ray(node: ast.ImportFrom) -> bytes:
    """``from ray import tune, air`` as tune_ckpt import statements on one line."""
    parts = []
    for alias in node.names:
        bound = alias.asname or alias.name
        if alias.name in ("tune", "train"):
            parts.append(f"import tune_ckpt as {bound}")
        elif alias.name == "air":
            parts.append("from tune_ckpt import air" + (f" as {bound}" if alias.asname else ""))
        else:
            raise RewriteError(f"from ray import {alias.name}: not a Ray Tune module")
    return "; ".join(parts).encode()


def _is_ray(node: ast.expr, attr: str) -> bool:
    """``node`` is ``ray.<attr>``."""
    return (
        isinstance(node, ast.Attribute)
        and node.attr == attr
        and isinstance(node.value, ast.Name)
        and node.value.id == "ray"
    )


class _Collector(ast.NodeVisitor):
    def __init__(self, source: bytes, starts: list[int]) -> None:
        self.source = source
        self.starts = starts
        self.edits: list[Edit] = []
        self.siblings: list[str] = []
        self.plain_ray_imports: list[ast.Import] = []
        self.binds_tune_ckpt = False
        self.qualified_used = False

    def _span(self, node: ast.stmt | ast.expr) -> tuple[int, int]:
        assert node.end_lineno is not None and node.end_col_offset is not None
        start = self.starts[node.lineno - 1] + node.col_offset
        return start, self.starts[node.end_lineno - 1] + node.end_col_offset

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or not (module == "ray" or module.startswith("ray.")):
            return
        start, end = self._span(node)
        names = [alias.name for alias in node.names]
        if module == "ray":
            self.edits.append(Edit(start, end, _from_ray(node)))
            return
        if module.startswith(_EXAMPLES + "."):
            sibling = module[len(_EXAMPLES) + 1 :]
            if "." in sibling:
                raise RewriteError(f"from {module} import ...: a package of examples")
            self.siblings.append(sibling)
            new_module = sibling
        elif module in ("ray.tune", "ray.air", "ray.train") or module.startswith(
            ("ray.tune.", "ray.air.")
        ):
            new_module = _swap_module(module, names)
        else:
            return  # Ray core (ray.util, ray.data, ...): stays Ray
        match = _FROM_MODULE.match(self.source, start, end)
        if match is None or match.group(1).decode() != module:
            raise RewriteError(f"line {node.lineno}: cannot locate the module of the import")
        self.edits.append(Edit(match.start(1), match.end(1), new_module.encode()))

    def visit_Import(self, node: ast.Import) -> None:
        names = [alias.name for alias in node.names]
        if names == ["ray"]:
            self.plain_ray_imports.append(node)
            return
        if not any(n.startswith(("ray.tune", "ray.air", "ray.train")) for n in names):
            return
        parts = []
        for alias in node.names:
            name = alias.name
            if name == "ray.train" or name.startswith("ray.train."):
                raise RewriteError(f"import {name}: Ray Train, not Tune")
            if name.startswith(_EXAMPLES):
                raise RewriteError(f"import {name}: an example imported as a module path")
            if name == "ray.tune" or name.startswith("ray.tune."):
                name = "tune_ckpt" + name[len("ray.tune") :]
            elif name == "ray.air" or name.startswith("ray.air."):
                name = "tune_ckpt.air" + name[len("ray.air") :]
            parts.append(name + (f" as {alias.asname}" if alias.asname else ""))
            # ``import tune_ckpt.schedulers`` binds the name tune_ckpt, as ``import ray.tune``
            # bound ray.
            self.binds_tune_ckpt |= name.startswith("tune_ckpt") and alias.asname is None
        start, end = self._span(node)
        self.edits.append(Edit(start, end, ("import " + ", ".join(parts)).encode()))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        # The visitor sees ``ray.tune.report`` before ``ray.tune``: outer names first.
        if _is_ray(node.value, "train"):
            if node.attr not in TRAIN_NAMES:
                raise RewriteError(f"line {node.lineno}: ray.train.{node.attr}: Ray Train")
            self._replace(node, f"ray.train.{node.attr}", f"tune_ckpt.{node.attr}")
        elif _is_ray(node.value, "tune") and node.attr == "examples":
            raise RewriteError(f"line {node.lineno}: ray.tune.examples used by its path")
        elif _is_ray(node, "tune") or _is_ray(node, "air"):
            new = "tune_ckpt" if node.attr == "tune" else "tune_ckpt.air"
            self._replace(node, f"ray.{node.attr}", new)
        else:
            self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "ray" and not isinstance(node.ctx, ast.Load):
            raise RewriteError(f"line {node.lineno}: the name ray is rebound")

    def _replace(self, node: ast.expr, expected: str, text: str) -> None:
        start, end = self._span(node)
        if self.source[start:end] != expected.encode():
            raise RewriteError(f"line {node.lineno}: {expected} is split over lines")
        self.edits.append(Edit(start, end, text.encode()))
        self.qualified_used = True


def rewrite(source: bytes) -> Rewritten:
    """Swap Ray Tune for tune_ckpt in ``source`` (a Python file's bytes) by the table above."""
    tree = ast.parse(source)
    collector = _Collector(source, _line_starts(source))
    collector.visit(tree)
    edits = collector.edits
    if collector.qualified_used and not collector.binds_tune_ckpt:
        if not collector.plain_ray_imports:
            raise RewriteError("ray.tune/ray.air used without an `import ray` to extend")
        first = collector.plain_ray_imports[0]
        _, end = collector._span(first)
        edits.append(Edit(end, end, b", tune_ckpt"))
    out = bytearray(source)
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        out[edit.start : edit.end] = edit.text
    rewritten = bytes(out)
    _check_untouched(source, rewritten, edits, _line_starts(source))
    return Rewritten(rewritten, tuple(dict.fromkeys(collector.siblings)), len(edits))


def _check_untouched(before: bytes, after: bytes, edits: list[Edit], starts: list[int]) -> None:
    """Every line no edit touches is the same, byte for byte, in the same order."""
    touched = set()
    for edit in edits:
        first = bisect.bisect_right(starts, edit.start) - 1
        last = bisect.bisect_right(starts, max(edit.start, edit.end - 1)) - 1
        touched.update(range(first, last + 1))
    old = before.splitlines(keepends=True)
    new = after.splitlines(keepends=True)
    kept_old = [line for i, line in enumerate(old) if i not in touched]
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    kept_new = [
        new[j]
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag == "equal"
        for j in range(j1, j2)
    ]
    if kept_old != kept_new:
        raise AssertionError("the rewrite changed a line that holds no import or listed name")


def unified_diff(name: str, before: bytes, after: bytes) -> str:
    """The rewrite as a unified diff, for ``--show-diff``."""
    return "".join(
        difflib.unified_diff(
            before.decode().splitlines(keepends=True),
            after.decode().splitlines(keepends=True),
            fromfile=f"ray/tune/examples/{name}.py",
            tofile=f"rewritten/{name}.py",
        )
    )
