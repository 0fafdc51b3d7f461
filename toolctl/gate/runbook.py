"""Runbooks: YAML files of machine checks plus a human description and remediation steps.

``load_runbook(name_or_path)`` validates a file with pydantic; anything wrong is a
``RunbookError`` (exit 2) naming the file and the field. Built-in runbooks ship inside the
package (``toolctl/gate/runbooks/``, copies of the repo's ``runbooks/``), so
``toolctl gate`` finds ``canary-promotion`` from a checkout and from a pip install.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, model_validator

from toolctl.errors import UsageError

DEFAULT_RUNBOOK = "canary-promotion"

#: Figures a check can read; each is computed in SQL (counts) or from latencies.
RATE_METRICS = ("error_rate", "auth_failure_rate", "abandoned_rate", "retry_ratio",
                "validation_error_rate", "reject_rate")
QUANTILE_METRICS = {"p50_ms": 0.5, "p90_ms": 0.9, "p95_ms": 0.95, "p99_ms": 0.99}


class RunbookError(UsageError):
    """A runbook that cannot be read or does not validate (exit 2)."""

    code = "runbook"


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    severity: Literal["critical", "major"] = "major"
    # Strict: YAML's `yes`/`on` are booleans, and a boolean or a quoted "3" where a count
    # belongs is a mistake to refuse, not a 1 (`consecutive_failures: yes` would roll back
    # on the first failure). Floats stay lax: PyYAML reads `5e-3` (no dot) as a string.
    dry_run: StrictBool = False
    min_samples: StrictInt | None = Field(default=None, ge=1)
    on_no_data: Literal["inconclusive", "fail", "pass"] = "inconclusive"
    description: str | None = None


class RatioCompare(_Check):
    kind: Literal["ratio_compare"]
    metric: Literal["error_rate", "auth_failure_rate", "abandoned_rate", "retry_ratio",
                    "validation_error_rate"]
    margin_abs: float | None = Field(default=None, ge=0)
    margin_rel: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _some_margin(self):
        if self.margin_abs is None and self.margin_rel is None:
            raise ValueError("ratio_compare needs margin_abs and/or margin_rel")
        return self


class QuantileCompare(_Check):
    kind: Literal["quantile_compare"]
    quantile: float = Field(gt=0, lt=1)
    max_ratio: float = Field(gt=1)  # candidate/baseline quantile ratio allowed


class DistributionShift(_Check):
    kind: Literal["distribution_shift"]
    max_shift_rel: float = Field(default=0.1, gt=0)  # HL shift / baseline median
    confidence: float = Field(default=0.98, gt=0.5, lt=1)  # Kayenta's default


class Threshold(_Check):
    kind: Literal["threshold"]
    metric: Literal["error_rate", "auth_failure_rate", "abandoned_rate", "retry_ratio",
                    "validation_error_rate", "reject_rate", "p50_ms", "p90_ms", "p95_ms", "p99_ms"]
    max: float = Field(ge=0)


def _duration(text: str, what: str):
    """A runbook's duration (``5m``, ``1h``, ``30d``), checked when the runbook is loaded: a
    typo must refuse the runbook, not disable its check when it runs."""
    from toolctl.timeutil import parse_duration

    try:
        return parse_duration(text, option=what)
    except UsageError as exc:
        raise ValueError(f"{exc.message} ({exc.hint})") from None


class BurnWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    long: str
    short: str
    factor: float = Field(gt=0)

    @model_validator(mode="after")
    def _windows_are_durations(self) -> "BurnWindow":
        if _duration(self.long, "long window") <= _duration(self.short, "short window"):
            raise ValueError(f"the long window ({self.long}) must be longer than the short one ({self.short})")
        return self


SRE_WORKBOOK_WINDOWS = [
    BurnWindow(long="1h", short="5m", factor=14.4),
    BurnWindow(long="6h", short="30m", factor=6.0),
    BurnWindow(long="3d", short="6h", factor=1.0),
]


class BurnRate(_Check):
    kind: Literal["burn_rate"]
    objective: float = Field(gt=0, lt=1)  # e.g. 0.999 of calls succeed
    period: str = "30d"
    windows: list[BurnWindow] = Field(default_factory=lambda: list(SRE_WORKBOOK_WINDOWS), min_length=1)

    @model_validator(mode="after")
    def _windows_fit_the_period(self) -> "BurnRate":
        period = _duration(self.period, "period")
        for w in self.windows:
            if _duration(w.long, "long window") > period:
                raise ValueError(f"the long window {w.long} is longer than the SLO period {self.period}")
        return self


class RetryBudget(_Check):
    kind: Literal["retry_budget"]
    max_retry_ratio: float = Field(ge=0, le=1)       # retries / attempts
    max_attempts_per_call: float = Field(ge=1)


class QualityCompare(_Check):
    kind: Literal["quality_compare"]
    max_mean_drop: float = Field(default=0.05, ge=0)    # absolute drop of mean confidence
    low_threshold: float = Field(default=0.5, gt=0, le=1)
    max_low_share_increase: float = Field(default=0.05, ge=0)


class Abandoned(_Check):
    kind: Literal["abandoned"]
    max_rate: float | None = Field(default=None, ge=0)      # single window
    margin_abs: float | None = Field(default=None, ge=0)    # compare: candidate − baseline

    @model_validator(mode="after")
    def _some_bound(self):
        if self.max_rate is None and self.margin_abs is None:
            raise ValueError("abandoned needs max_rate (single window) and/or margin_abs (compare)")
        return self


Check = Annotated[Union[RatioCompare, QuantileCompare, DistributionShift, Threshold, BurnRate,
                        RetryBudget, QualityCompare, Abandoned], Field(discriminator="kind")]
COMPARE_KINDS = {"ratio_compare", "quantile_compare", "distribution_shift", "quality_compare"}


class Runbook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    title: str
    description: str
    remediation: list[str] = Field(min_length=1)
    mode: Literal["compare", "single"] = "compare"
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    consecutive_failures: StrictInt = Field(default=2, ge=1)  # strict: see _Check.dry_run
    max_evaluations: StrictInt = Field(default=6, ge=1)
    checks: list[Check] = Field(min_length=1)
    content_hash: str = ""

    @model_validator(mode="after")
    def _consistent(self):
        names = [c.name for c in self.checks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"check names must be unique: {dup[0]!r} repeats")
        if self.mode == "compare":
            # A rejected line has no version (nor a trustworthy time): no arm can count it, so
            # in a gate the rate would always read 0 % and a critical check always pass.
            blind = [c.name for c in self.checks if getattr(c, "metric", None) == "reject_rate"]
            if blind:
                raise ValueError(f"check {blind[0]!r}: reject_rate has no version to compare; "
                                 "use it in a single-window runbook (mode: single)")
        if self.mode == "single":
            bad = [c.name for c in self.checks if c.kind in COMPARE_KINDS]
            if bad:
                raise ValueError(f"single-window runbook cannot hold comparison check {bad[0]!r}")
            # margin_abs compares with a baseline, which a single window does not have: such a
            # check could only ever report `error`, so the runbook is refused when it loads.
            unbounded = [c.name for c in self.checks if c.kind == "abandoned" and c.max_rate is None]
            if unbounded:
                raise ValueError(f"check {unbounded[0]!r}: an abandoned check in a single-window "
                                 "runbook needs max_rate (margin_abs compares two versions)")
        return self


def builtin_dir():
    return resources.files("toolctl.gate").joinpath("runbooks")


def list_builtin() -> list[str]:
    return sorted(e.name[:-5] for e in builtin_dir().iterdir() if e.name.endswith(".yaml"))


def _resolve(name_or_path: str) -> tuple[str, str]:
    """(label, text) of a runbook given as a path or a built-in name."""
    p = Path(name_or_path)
    # A bare built-in name is the built-in even when the working directory holds a file or a
    # directory of that name (`toolctl gate` in a checkout with a canary-promotion/ folder
    # failed, or silently gated with whatever file was there); ./NAME reads the file.
    looks_like_path = p.suffix in (".yaml", ".yml") or "/" in name_or_path or len(p.parts) > 1
    if looks_like_path or (p.exists() and not builtin_dir().joinpath(f"{name_or_path}.yaml").is_file()):
        try:
            return str(p), p.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RunbookError(f"cannot read runbook {p}: {exc}",
                               hint="pass an existing YAML file or a built-in name (`toolctl runbook list`)") from None
    entry = builtin_dir().joinpath(f"{name_or_path}.yaml")
    if not entry.is_file():
        raise RunbookError(f"no runbook named {name_or_path!r}",
                           hint="built-in runbooks: " + ", ".join(list_builtin()))
    return f"{name_or_path} (built-in)", entry.read_text("utf-8")


def _strict_loader():
    """yaml's SafeLoader, refusing a mapping that names a key twice.

    YAML keeps the last of two equal keys without a word, so an edit that adds
    ``max_ratio: 5`` below an older ``max_ratio: 1.2`` would silently loosen a gate. Keys
    merged in with ``<<`` may still be overridden (that is what merging is for).
    """
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen: set = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    if isinstance(key, (str, int, float, bool, type(None))):
                        if key in seen:
                            raise _DuplicateKey(key, key_node.start_mark.line + 1)
                        seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


class _DuplicateKey(Exception):
    def __init__(self, key, line: int) -> None:
        super().__init__(key, line)
        self.key, self.line = key, line


def load_runbook(name_or_path: str | None = None) -> Runbook:
    """Load and validate a runbook (a file path or a built-in name; None = canary-promotion)."""
    import yaml

    label, text = _resolve(name_or_path or DEFAULT_RUNBOOK)
    try:
        doc = yaml.load(text, Loader=_strict_loader())  # noqa: S506 (a SafeLoader subclass)
        if not isinstance(doc, dict):
            raise RunbookError(f"runbook {label} must be a YAML mapping",
                               hint="start from `toolctl runbook show canary-promotion`")
        runbook = Runbook.model_validate(doc)
    except _DuplicateKey as exc:
        raise RunbookError(f"runbook {label}: key {exc.key!r} appears twice (line {exc.line})",
                           hint="keep one of the two lines: YAML would silently use the last") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RunbookError(f"runbook {label} is not valid YAML{where}",
                           hint="fix the YAML syntax (indentation, colons, quotes)") from None
    except RecursionError:  # hundreds of nested lists: reading or validating them
        raise RunbookError(f"runbook {label} is nested too deeply to read",
                           hint="a runbook is a mapping of a few levels: start from "
                                "`toolctl runbook show canary-promotion`") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise RunbookError(f"runbook {label}: {loc or 'runbook'}: {err['msg']}",
                           hint="see docs/gate.md for the check kinds and their fields") from None
    runbook.content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return runbook


def min_samples_default(check) -> int:
    """Fewest samples per arm before a check can conclude (a p95 bound needs 59, p99 299)."""
    from toolctl.gate.statistics import min_samples_for_quantile

    if check.min_samples is not None:
        return check.min_samples
    q = getattr(check, "quantile", None)
    if q is None and getattr(check, "metric", None) in QUANTILE_METRICS:
        q = QUANTILE_METRICS[check.metric]
    if q is not None:
        return min_samples_for_quantile(q)
    if check.kind == "distribution_shift":
        return 20
    return 30
