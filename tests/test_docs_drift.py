"""The docs say what the code does: documented signatures and event names cannot drift.

docs/design.md's signatures are compared with ``inspect.signature``; every event name the
package logs or emits (found in its source by AST) must be registered in
``microscheduler._log_events``, and the docs' tables must list exactly the registered names.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import microscheduler
from microscheduler._log_events import LOG_EVENTS, SCHEDULER_EVENT_KINDS

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "microscheduler"
DESIGN = (ROOT / "docs" / "design.md").read_text()
OBSERVABILITY = (ROOT / "docs" / "observability.md").read_text()

# Callables design.md names that are not the library's (the user's compute, the stdlib's).
FOREIGN = {
    "compute",
    "f",
    "str",
    "repr",
    "loop.time",
    "time.perf_counter",
    "structlog.configure",
    "structlog.wrap_logger",
    "logging.getLogger",
}
LEVEL_OF_METHOD = {
    "debug": "debug",
    "info": "info",
    "warning": "warning",
    "warn": "warning",
    "error": "error",
    "exception": "error",
    "critical": "error",
}
# Helpers that log their second argument as a per-task debug event.
FORWARDERS = {"log_task": (1, "debug")}
EVENT_NAME = re.compile(r"[a-z]+(?:_[a-z]+)+")


# --- signatures ------------------------------------------------------------------------


def code_spans(text: str) -> list[str]:
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", text)]


def documented_calls(text: str) -> list[tuple[str, str]]:
    """``(callable, parameters)`` for every code span shaped ``name(...)``."""
    calls = []
    for span in code_spans(text):
        match = re.fullmatch(r"(?:await )?([A-Za-z_][\w.]*)\((.*)\)(?: -> .+)?", span)
        if match:
            calls.append((match[1], match[2]))
    return calls


def public_callables(name: str) -> list[Callable[..., Any]]:
    """What ``name`` may mean in the docs: a public name, a dotted path, or a method."""
    head, _, rest = name.partition(".")
    if head == "microscheduler":
        module_name, _, attr = name.rpartition(".")
        return [getattr(importlib.import_module(module_name), attr)]
    if hasattr(microscheduler, head):
        found: Any = getattr(microscheduler, head)
        for part in rest.split(".") if rest else ():
            found = getattr(found, part)
        return [found]
    owners = [getattr(microscheduler, public) for public in microscheduler.__all__]
    return [getattr(owner, name) for owner in owners if callable(getattr(owner, name, None))]


def documented_parameters(parameters: str) -> list[inspect.Parameter]:
    """The doc's parameter list as ``inspect.Parameter`` objects (``name=`` is required)."""
    source = re.sub(r"(\w+)=(?=\s*(?:,|$))", r"\1", parameters)
    function = ast.parse(f"def documented({source}): pass").body[0]
    assert isinstance(function, ast.FunctionDef)
    arguments = function.args
    result = []
    positional = arguments.posonlyargs + arguments.args
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    for argument, default in zip(positional, defaults, strict=True):
        result.append(parameter(argument.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD, default))
    for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        result.append(parameter(argument.arg, inspect.Parameter.KEYWORD_ONLY, default))
    return result


def parameter(name: str, kind: Any, default: ast.expr | None) -> inspect.Parameter:
    if default is None:
        return inspect.Parameter(name, kind)
    try:
        value = eval(ast.unparse(default), vars(microscheduler))  # a documented default value
    except NameError:
        value = ast.unparse(default)  # a call's argument (``timeout=t``), not a default
    return inspect.Parameter(name, kind, default=value)


def signature_of(function: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(function)
    except ValueError:  # asyncio.Future's C methods (add_done_callback) have none
        return None


def signature_mismatch(documented: list[inspect.Parameter], actual: inspect.Signature) -> str:
    """Why ``documented`` is not ``actual`` (a full list) or a call ``actual`` takes, or ''."""
    real = {name: p for name, p in actual.parameters.items() if name != "self"}
    unknown = [p.name for p in documented if p.name not in real]
    if unknown:
        return f"no parameter(s) {unknown} in {actual}"
    for doc in documented:
        have = real[doc.name]
        if doc.kind is inspect.Parameter.KEYWORD_ONLY and have.kind is not doc.kind:
            return f"{doc.name} is documented keyword-only but is not, in {actual}"
    if [p.name for p in documented] != list(real) or any(
        isinstance(p.default, str) for p in documented
    ):
        return ""  # a call (some arguments, or values such as ``timeout=t``): the names exist
    for doc in documented:
        have = real[doc.name]
        if doc.default is inspect.Parameter.empty:
            if have.default is not inspect.Parameter.empty:
                return f"{doc.name} is documented as required, but defaults to {have.default!r}"
        elif doc.default != have.default:
            return f"{doc.name} is documented to default to {doc.default!r}, in {actual}"
    return ""


def test_every_signature_in_design_md_matches_the_code() -> None:
    """Each ``name(...)`` in docs/design.md names a real callable with those parameters."""
    problems = []
    checked = 0
    for name, parameters in documented_calls(DESIGN):
        if name in FOREIGN:
            continue
        candidates = public_callables(name)
        if not candidates:
            problems.append(f"{name}(...) is not a public callable of microscheduler")
            continue
        documented = documented_parameters(parameters)
        reasons = [
            signature_mismatch(documented, signature)
            for signature in map(signature_of, candidates)
            if signature is not None
        ]
        if documented and not reasons:
            problems.append(f"{name}(...) has no signature to check its parameters against")
        elif reasons and all(reasons):
            problems.append(f"`{name}({parameters})`: {reasons[0]}")
        checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 30  # the page's API section was found and read


def test_design_md_lists_every_worker_config_field_with_its_default() -> None:
    """The Configuration bullet of docs/design.md gives each WorkerConfig field and default."""
    bullet = re.search(r"\*\*Configuration\.\*\*(.*?)\n- \*\*", DESIGN, re.S)
    assert bullet is not None
    documented = {}
    for span in code_spans(bullet[1]):
        field, equals, default = span.partition("=")
        if equals and field.isidentifier():
            documented[field] = eval(default, vars(microscheduler))
    fields = {
        field.name: field.default
        for field in dataclasses.fields(microscheduler.WorkerConfig)
        if field.init
    }
    assert documented == fields


def test_design_md_signature_check_catches_a_renamed_keyword() -> None:
    """The signature check fails for a keyword the code does not have (the old drift)."""
    documented = documented_parameters("config_or_count=1, *, logger=None, drain_timeout=10.0")
    reason = signature_mismatch(documented, inspect.signature(microscheduler.TaskExecutor))
    assert "config_or_count" in reason


# --- event names -----------------------------------------------------------------------


def package_sources() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), str(path))


def enclosing_functions(tree: ast.Module) -> dict[ast.AST, ast.FunctionDef | ast.AsyncFunctionDef]:
    owner = {}
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                owner[node] = function  # ast.walk is breadth-first: the innermost wins
    return owner


def literal_aliases(tree: ast.Module) -> dict[str, list[str]]:
    """The module's ``Name = Literal["a", "b"]`` aliases, by name."""
    aliases = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Subscript)
            and ast.unparse(node.value.value) in {"Literal", "typing.Literal"}
        ):
            values = [c.value for c in ast.walk(node.value.slice) if isinstance(c, ast.Constant)]
            for target in node.targets:
                if isinstance(target, ast.Name):
                    aliases[target.id] = [str(value) for value in values]
    return aliases


def names_in(
    expression: ast.expr,
    function: ast.FunctionDef | ast.AsyncFunctionDef | None,
    where: str,
    aliases: dict[str, list[str]],
) -> tuple[list[str], str]:
    """The string literals an event-name expression can take, or why it cannot be known."""
    if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
        return [expression.value], ""
    if isinstance(expression, ast.IfExp):
        body, why = names_in(expression.body, function, where, aliases)
        orelse, why_else = names_in(expression.orelse, function, where, aliases)
        return body + orelse, why or why_else
    if isinstance(expression, ast.Name) and function is not None:
        arguments = function.args.posonlyargs + function.args.args + function.args.kwonlyargs
        for argument in arguments:
            if argument.arg == expression.id:
                if function.name in FORWARDERS:
                    return [], ""  # its callers' names are checked where they call it
                annotation = "" if argument.annotation is None else ast.unparse(argument.annotation)
                if annotation == "EventKind":
                    return [], ""  # typed: the type checkers hold it to the registry
                if annotation in aliases:
                    return aliases[annotation], ""  # a Literal alias: its values
                return [], f"{where}: parameter {expression.id!r} is an unchecked event name"
        names: list[str] = []
        for node in ast.walk(function):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets = [node.target]
            if any(isinstance(t, ast.Name) and t.id == expression.id for t in targets):
                assert isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
                found, why = names_in(node.value, function, where, aliases)
                if why:
                    return [], why
                names += found
        if names:
            return names, ""
    return [], f"{where}: event name {ast.unparse(expression)!r} is not a literal"


def logged_and_emitted() -> tuple[list[tuple[str, str, str]], list[tuple[str, str]], list[str]]:
    """``(name, level, where)`` logged, ``(kind, where)`` emitted, and untraceable names."""
    logged, emitted, unknown = [], [], []
    for path, tree in package_sources():
        owner = enclosing_functions(tree)
        aliases = literal_aliases(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            method = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            where = f"{path}:{node.lineno}"
            if method in FORWARDERS:
                index, level = FORWARDERS[method]
                names, why = names_in(node.args[index], owner.get(node), where, aliases)
            elif method in LEVEL_OF_METHOD:
                level = LEVEL_OF_METHOD[method]
                first = node.args[0]
                if isinstance(first, ast.Constant) and not (
                    isinstance(first.value, str) and EVENT_NAME.fullmatch(first.value)
                ):
                    continue  # a message, not an event (argparse's parser.error)
                names, why = names_in(first, owner.get(node), where, aliases)
            elif method == "emit":
                names, why = names_in(node.args[0], owner.get(node), where, aliases)
                emitted += [(name, where) for name in names]
                unknown += [why] if why else []
                continue
            else:
                continue
            logged += [(name, level, where) for name in names]
            unknown += [why] if why else []
    return logged, emitted, unknown


def test_every_logged_event_is_registered_at_its_level() -> None:
    """Each event the package logs is in the registry, at the level it is logged at."""
    logged, _, unknown = logged_and_emitted()
    assert not unknown, "\n".join(unknown)
    wrong = [
        f"{where}: {name} logged at {level}, registered as {LOG_EVENTS.get(name)}"
        for name, level, where in logged
        if LOG_EVENTS.get(name) != level
    ]
    assert not wrong, "\n".join(wrong)
    assert {name for name, _, _ in logged} == set(LOG_EVENTS), "registered but never logged"


def test_every_emitted_scheduler_event_is_a_registered_kind() -> None:
    """Each ``emit`` of the package names a registered SchedulerEvent kind."""
    _, emitted, unknown = logged_and_emitted()
    assert not unknown, "\n".join(unknown)
    stray = [f"{where}: {kind}" for kind, where in emitted if kind not in SCHEDULER_EVENT_KINDS]
    assert not stray, "\n".join(stray)
    assert emitted


def test_the_event_scan_finds_a_new_unregistered_event(tmp_path: Path) -> None:
    """An event logged in the source but missing from the registry is found by the scan."""
    source = "def f(log):\n    log.warning('brand_new_event', x=1)\n"
    tree = ast.parse(source)
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call))
    names, why = names_in(call.args[0], enclosing_functions(tree)[call], "new.py:2", {})
    assert (names, why) == (["brand_new_event"], "")
    assert "brand_new_event" not in LOG_EVENTS


def test_design_md_logging_table_is_the_registry() -> None:
    """docs/design.md's Logging table lists exactly the registered log events and levels."""
    section = DESIGN.split("## Logging", 1)[1].split("\n## ", 1)[0]
    table = {}
    for first, second in re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|", section, re.M):
        for name in re.findall(r"`(\w+)`", first):
            table[name] = second.strip()
    assert table == LOG_EVENTS


def test_observability_md_lists_every_scheduler_event_kind() -> None:
    """docs/observability.md's table of SchedulerEvent kinds lists exactly the registered kinds."""
    section = OBSERVABILITY.split("| kind | when |", 1)[1].split("\n\n", 1)[0]
    kinds = set()
    for first in re.findall(r"^\| ([^|]+?) \|", section, re.M):
        kinds.update(re.findall(r"`(\w+)`", first))
    assert kinds == set(SCHEDULER_EVENT_KINDS)
