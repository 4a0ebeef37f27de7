"""Checks of the tensor arguments, shared by every public form of the loss and by :func:`klloss.trace`.

Every failure is a ``TypeError`` (wrong kind of object) or a ``ValueError`` (right kind, wrong
value) whose message starts with the argument's name. The options (beta, offset, reduction,
ignore_index) are checked by :class:`klloss.Options`. The published form calls none of this.
"""

import torch

_FLOATS = frozenset({torch.float64, torch.float32, torch.float16, torch.bfloat16})
_INTEGER_ORDER = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
_INTEGERS = frozenset(_INTEGER_ORDER)


def ignore_value(dtype, ignore_index):
    """``ignore_index`` if a label of integer ``dtype`` can hold it, else None: then no label
    equals it (a uint8 label of 156 is not -100, though -100 wraps to 156 in uint8)."""
    if ignore_index is None:
        return None
    info = torch.iinfo(dtype)
    return ignore_index if info.min <= ignore_index <= info.max else None


def _check_logits(name, x):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOATS:
        allowed = ", ".join(sorted(str(d).removeprefix("torch.") for d in _FLOATS))
        raise TypeError(f"{name} must have a floating-point dtype ({allowed}), got {x.dtype}")
    if x.dim() == 0:
        raise ValueError(f"{name} must have shape (..., C), got a 0-d tensor")


def _check_teachers(logits_t, input, target):
    # the student and the teachers may have different floating dtypes (a bfloat16 student, a
    # float32 teacher): every form computes in float32, or float64 if any of them is
    _check_logits("input", input)
    for name, x in (("target", target), ("logits_t", logits_t)):
        _check_logits(name, x)
        if x.shape != input.shape:
            vocabulary = x.shape[:-1] == input.shape[:-1] and x.dim() > 0
            hint = (
                f"; the vocabularies differ: align them first ({name}[..., :{input.shape[-1]}] where the "
                "first classes are the same), never by padding"
                if vocabulary
                else ""
            )
            raise ValueError(
                f"{name} must have the same shape as input {tuple(input.shape)}, got {tuple(x.shape)}{hint}"
            )
        if x.device != input.device:
            raise ValueError(f"{name} must be on the same device as input ({input.device}), got {x.device}")
    if input.shape[-1] == 0:
        raise ValueError(f"input must have at least one class, got shape {tuple(input.shape)}")


def _check_label_tensor(label, input):
    if not isinstance(label, torch.Tensor):
        raise TypeError(f"label must be a torch.Tensor of integers, got {type(label).__name__}")
    if label.dtype not in _INTEGERS:
        allowed = ", ".join(str(d).removeprefix("torch.") for d in _INTEGER_ORDER)
        hint = " (torch compares none of uint16, uint32, uint64: convert with label.long())"
        raise TypeError(
            f"label must have an integer dtype ({allowed}), got {label.dtype}"
            + (hint if label.dtype in (torch.uint16, torch.uint32, torch.uint64) else "")
        )
    if label.shape != input.shape[:-1]:
        raise ValueError(
            f"label must have shape input.shape[:-1] = {tuple(input.shape[:-1])}, got {tuple(label.shape)}"
        )
    if label.device != input.device:
        raise ValueError(f"label must be on the same device as input ({input.device}), got {label.device}")


def check_loss_tensors(logits_t, input, target, label):
    """Logits (..., C) with C >= 1 (any number of rows, 0 included) and labels (...); values unread."""
    # the usual, valid call in a few comparisons (at small sizes a check costs as much as an operator)
    t = torch.Tensor
    if isinstance(input, t) and isinstance(target, t) and isinstance(logits_t, t) and isinstance(label, t):
        shape, dtype, device = input.shape, input.dtype, input.device
        if (
            dtype in _FLOATS
            and target.dtype in _FLOATS
            and logits_t.dtype in _FLOATS
            and label.dtype in _INTEGERS
            and target.shape == shape
            and logits_t.shape == shape
            and label.shape == shape[:-1]
            and len(shape)
            and shape[-1]
            and target.device == device
            and logits_t.device == device
            and label.device == device
        ):
            return
    _check_teachers(logits_t, input, target)
    _check_label_tensor(label, input)


def is_transformed(x):
    # a tensor wrapped by a torch.func transform (vmap's batches, grad's tracking): its values
    # cannot be read on the host. torch.compile cannot trace the unwrapping, and traces the
    # transforms itself: there, no tensor counts as wrapped
    if torch.compiler.is_compiling():
        return False
    return torch.func.debug_unwrap(x, recurse=False) is not x


def host_readable(label):
    """Whether label values can be read on the host for free: a CPU tensor, in plain eager mode.

    On a GPU the read would wait for the device; under ``torch.compile`` it would break the graph;
    a tensor batched by ``torch.func.vmap`` has no single value. There the ``gather`` that reads
    the margin checks its indices instead (on a GPU, a device-side assert).
    """
    return label.device.type == "cpu" and not torch.compiler.is_compiling() and not is_transformed(label)


def check_labels(label, c, options):
    """Raise ValueError naming ``label`` if a value lies outside [0, C) and is not ``ignore_index``;
    only where that is free (:func:`host_readable`). Returns the number of rows kept, or None where
    the labels were not read."""
    if not host_readable(label):
        return None
    if label.numel() == 0:
        return 0
    bounds = torch.aminmax(label)  # one pass; on the CPU the host copy waits for nothing
    low, high = bounds.min.item(), bounds.max.item()  # Python ints: compared without wrapping
    ignore = ignore_value(label.dtype, options.ignore_index)
    if low >= 0 and high < c and (ignore is None or not low <= ignore <= high):
        return label.numel()  # every label a class, none ignored: the usual case, one pass
    kept = torch.ones_like(label, dtype=torch.bool) if ignore is None else label != ignore
    top = min(c - 1, torch.iinfo(label.dtype).max)  # the largest class, in the label's range
    bad = kept & ((label < 0) | (label > top))  # (label >= c would wrap c in a narrow dtype)
    if bad.any():
        values = torch.unique(label[bad]).tolist()
        shown = ", ".join(str(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
        allowed = f"[0, C) = [0, {c})"
        if ignore is not None:
            allowed += f" or equal ignore_index = {ignore}"
        elif options.ignore_index is not None:
            outside = f"ignore_index = {options.ignore_index} is outside {label.dtype}'s range"
            allowed += f" ({outside}: no row is ignored)"
        raise ValueError(f"label values must lie in {allowed}, got {shown}")
    return int(kept.sum())


def check_strict(logits_t, input, target, label):
    """The teaching functions' checks (:func:`klloss.trace`): logits (N, C), N >= 1, every label a
    class in [0, C), none ignored."""
    for name, x in (("input", input), ("target", target), ("logits_t", logits_t)):
        if isinstance(x, torch.Tensor) and x.dim() != 2:
            raise ValueError(f"{name} must have shape (N, C), got shape {tuple(x.shape)}")
    if isinstance(input, torch.Tensor) and isinstance(label, torch.Tensor) and label.shape != input.shape[:1]:
        raise ValueError(f"label must have shape (N,) = ({input.shape[0]},), got {tuple(label.shape)}")
    check_loss_tensors(logits_t, input, target, label)
    if input.shape[0] == 0:
        raise ValueError(f"input must hold at least one sample, got shape {tuple(input.shape)}")
    bounds = torch.aminmax(label)
    low, high = bounds.min.item(), bounds.max.item()
    if low < 0 or high >= input.shape[1]:
        raise ValueError(
            f"label values must lie in [0, C) = [0, {input.shape[1]}), got values from {low} to {high}"
        )


def check_roles(student, teachers, call):
    """Refuse a call whose arguments are in the wrong order, before it can return a loss that
    trains nothing: a teacher argument that requires grad while the student does not, or the
    student's tensor passed as a teacher. ``student`` is ``(name, tensor)``, ``teachers`` a tuple
    of them; ``call`` names the signature expected, for the message. Evaluation under
    ``torch.no_grad()`` passes the grad check; under a torch.func transform nothing is checked."""
    name, s = student
    if not all(isinstance(t, torch.Tensor) for t in (s, *(t for _, t in teachers))):
        return  # check_loss_tensors names the argument that is not a tensor
    if is_transformed(s) or any(is_transformed(t) for _, t in teachers):
        return
    for t_name, t in teachers:
        if t is s:
            raise ValueError(
                f"{t_name} is the same tensor as {name}: the student's logits were passed as a "
                f"teacher's, so the student would be distilled from itself. The order expected is {call}"
            )
    if torch.is_grad_enabled() and not s.requires_grad:
        wrong = [t_name for t_name, t in teachers if t.requires_grad]
        if wrong:
            raise ValueError(
                f"{' and '.join(wrong)} {'requires' if len(wrong) == 1 else 'require'} grad but {name} "
                f"does not: the arguments look swapped (the loss detaches the teacher, so nothing "
                f"would train). The order expected is {call}. If the teacher really "
                f"needs its graph, pass {name} a tensor that requires grad too; to evaluate, call "
                f"under torch.no_grad()"
            )
