"""Numbered checkpoints of a training run: list them, keep the newest few."""
import os
import re
import string

__all__ = ["list_checkpoints", "rotate", "check_rotation"]


def _template_pattern(template):
    """A regex matching the file names ``template`` produces, capturing the step (or epoch)."""
    parts, fields = [], []
    for literal, field, _, _ in string.Formatter().parse(os.path.basename(template)):
        parts.append(re.escape(literal))
        if field is not None:
            if field not in ("step", "epoch"):
                raise ValueError(f"checkpoint path template: only {{step}} and {{epoch}} fields, got {{{field}}}")
            parts.append(f"(?P<{field}>-?\\d+)" if field not in fields else "-?\\d+")
            fields.append(field)
    if not fields:
        raise ValueError(f"keep_last needs a path template with a {{step}} or {{epoch}} field, got {template!r}")
    return re.compile("".join(parts) + r"\Z"), "step" if "step" in fields else "epoch"


def _pattern(template):
    if "{" in os.path.dirname(template):
        raise ValueError(f"checkpoint path template: fields belong in the file name, not the directory ({template!r})")
    return _template_pattern(template)


def check_rotation(template, keep_last):
    """Refuse a ``keep_last`` or a ``template`` that :func:`rotate` could not use, before anything is saved."""
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise ValueError(f"keep_last must be a positive integer, got {keep_last!r}")
    _pattern(template)


def list_checkpoints(template):
    """[(number, path)] of existing files matching ``template``, oldest first."""
    directory = os.path.dirname(os.path.abspath(template))
    pattern, field = _pattern(template)
    found = []
    for name in os.listdir(directory):
        m = pattern.match(name)
        if m:
            found.append((int(m.group(field)), os.path.join(directory, name)))
    return sorted(found)


def rotate(template, keep_last, keep=None):
    """Delete all but the ``keep_last`` newest checkpoints matching ``template``; return those deleted.

    ``keep`` (the file just written) is never deleted, even when files of another run
    in the same folder carry higher numbers.
    """
    check_rotation(template, keep_last)
    found = list_checkpoints(template)
    protected = None if keep is None else os.path.abspath(os.fspath(keep))
    doomed = [p for _, p in found[:-keep_last] if os.path.abspath(p) != protected]
    for p in doomed:
        try:
            os.remove(p)
        except FileNotFoundError:
            pass
    return doomed
